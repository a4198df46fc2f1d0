// Short probes of this machine's limits, measured in the same run as a benchmark so that speeds
// can be quoted as a share of them (shared/docs/machine.md): memory read bandwidth and bf16
// multiply-accumulate throughput, on every thread of a pool.
#pragma once

#include <cstddef>

namespace bringup {
class ThreadPool;
}

namespace bringup::cpu {

struct ProbeResult {
  double best, median;
};

// GB/s reading a buffer of `bytes` (each thread its own part), over `reps` passes.
ProbeResult probe_memory_read(ThreadPool& pool, size_t bytes, int reps);
// GFLOP/s of register-only bf16 dot products (vdpbf16ps: 2 flops per bf16 pair), or fp32 FMA
// when the CPU lacks AVX512-BF16 (then *bf16 is set false).
ProbeResult probe_bf16_compute(ThreadPool& pool, int reps, bool* bf16);

}  // namespace bringup::cpu
