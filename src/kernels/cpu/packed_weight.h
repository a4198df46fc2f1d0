// The CPU layout of a weight. Output features are taken 16 at a time ("groups"), which is exactly
// a bfloat8_b block on the device (16 output channels at one input index) and one AVX-512 vector
// of fp32 accumulators. A group never straddles two stacked parts (q/k/v, gate/up), so each part
// keeps the block grouping it has on the device; a part whose size is not a multiple of 16 ends
// in a partly used group.
//
//   fp32             values [groups][K][16] float
//   bf16             values [groups][Kp/2][16][2] bf16, Kp = K rounded up to even: a pair of
//                    inputs per output lane, the operand order of vdpbf16ps
//   bfloat8_b/4_b    values [groups][K][16] int8 (two's complement code), exps [groups][K] uint8
//                    (shared exponent); value = code * 2^(exp - bfp_exponent_bias)
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/host_matrix.h"

namespace bringup {
class ThreadPool;
}

namespace bringup::cpu {

constexpr int64_t kGroup = 16;

struct PackedWeight {
  WeightFormat format = WeightFormat::kF32;
  int64_t k = 0;               // input features
  int64_t k_pad = 0;           // K rounded up to even (bf16 pairs)
  int64_t groups = 0;          // groups of 16 output features
  std::vector<int64_t> col0;   // first output column of each group
  std::vector<int32_t> count;  // output columns each group holds (1..16)
  AlignedBuffer values;
  AlignedBuffer exps;

  const float* f32_group(int64_t g) const { return values.as<float>() + g * k * kGroup; }
  const uint16_t* bf16_group(int64_t g) const { return values.as<uint16_t>() + g * k_pad * kGroup; }
  const int8_t* code_group(int64_t g) const { return values.as<int8_t>() + g * k * kGroup; }
  const uint8_t* exp_group(int64_t g) const { return exps.as<uint8_t>() + g * k; }
  int exponent_bias() const;
};

struct PackedSize {
  size_t values, exps;
};
PackedSize packed_size(WeightFormat format, int64_t groups, int64_t k);
// Bytes of a weight stacked from parts of part_rows output features each, k inputs.
size_t packed_bytes(WeightFormat format, std::span<const int64_t> part_rows, int64_t k);

// Converts host matrices (stacked along the output dimension) into `format`, in parallel.
PackedWeight pack_weight(ThreadPool& pool, std::span<const HostMatrix> parts, WeightFormat format);
// Output row `row` (a column of the layout) decoded to fp32: the embedding lookup.
void unpack_row(const PackedWeight& w, int64_t row, float* out);

}  // namespace bringup::cpu
