// linear on the CPU: out[M, N] = x[M, K] * W^T (+ bias), W packed as in packed_weight.h.
#pragma once

#include <cstdint>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "kernels/cpu/microkernels.h"
#include "kernels/cpu/packed_weight.h"

namespace bringup::cpu {

// Reusable buffers, so that decode steps allocate nothing.
struct MatmulScratch {
  AlignedBuffer activations;         // x converted for the kernels
  std::vector<AlignedBuffer> acc;    // per thread: [M][kAccStride] fp32
  std::vector<AlignedBuffer> panel;  // per thread: a block of block-float groups as bf16
  std::vector<int64_t> runs;         // few rows: where each run of panels a thread takes starts
};

// The most bytes MatmulScratch grows to for products of up to m rows and k inputs.
size_t matmul_workspace_bytes(int threads, int64_t m, int64_t k, bool block_float);

void matmul(ThreadPool& pool, MatmulScratch& scratch, const MicroKernels& kernels, const float* x,
            int64_t m, const PackedWeight& w, const float* bias, float* out);

}  // namespace bringup::cpu
