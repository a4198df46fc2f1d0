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
  int method = 0;  // for the read probe: the ReadMethod that read fastest
};

// How the read probe loads: a fast GEMV streams its rows one of the first three ways; which of the
// three reads fastest differs between machines and sittings, so the probe tries each.
enum class ReadMethod { kPlain, kPrefetch1K, kPrefetch4K, kNonTemporal };
inline constexpr int kReadMethods = 4;
const char* read_method_name(int method);

// GB/s reading a buffer of `bytes` (each thread streaming its own part, 64-byte loads), `reps`
// passes with each ReadMethod; the method with the best pass, with its best and median.
ProbeResult probe_memory_read(ThreadPool& pool, size_t bytes, int reps);
// The better of two probes of the same limit (e.g. one before and one after the timed runs).
ProbeResult better(const ProbeResult& a, const ProbeResult& b);
// GFLOP/s of register-only bf16 dot products (vdpbf16ps: 2 flops per bf16 pair), or fp32 FMA
// when the CPU lacks AVX512-BF16 (then *bf16 is set false).
ProbeResult probe_bf16_compute(ThreadPool& pool, int reps, bool* bf16);

}  // namespace bringup::cpu
