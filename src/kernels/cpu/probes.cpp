#include "kernels/cpu/probes.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "kernels/cpu/microkernels.h"

namespace bringup::cpu {

extern double (*const kAvx512Dpbf16Probe)(int64_t);                  // micro_avx512.cpp
extern uint64_t (*const kAvx512ReadProbe)(const uint64_t*, size_t);  // micro_avx512.cpp

namespace {

using Clock = std::chrono::steady_clock;

ProbeResult summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v.back(), v[v.size() / 2]};
}

// Sums 64-bit words with independent accumulators: the loads, not the adds, set the pace.
uint64_t sum_words(const uint64_t* p, size_t n) {
  uint64_t a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0, h = 0;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    a += p[i];
    b += p[i + 1];
    c += p[i + 2];
    d += p[i + 3];
    e += p[i + 4];
    f += p[i + 5];
    g += p[i + 6];
    h += p[i + 7];
  }
  return a + b + c + d + e + f + g + h;
}

double fma_loop(int64_t iterations) {
  float acc[16][8] = {};
  for (int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 16
    for (auto& a : acc)
#pragma GCC unroll 8
      for (float& x : a) x = x * 0.999f + 1e-7f;
  }
  double s = 0;
  for (auto& a : acc)
    for (float x : a) s += x;
  return s;
}

}  // namespace

ProbeResult probe_memory_read(ThreadPool& pool, size_t bytes, int reps) {
  AlignedBuffer buf(bytes, AlignedBuffer::Pages::kHuge);  // as the weights are
  std::memset(buf.as<char>(), 1, bytes);                  // back every page
  const size_t words = bytes / 8;
  const int threads = pool.size();
  // 64-byte loads where the CPU has them: the probe should find the limit, not the loop's.
  uint64_t (*sum)(const uint64_t*, size_t) = cpu_has_avx512_bf16() ? kAvx512ReadProbe : sum_words;
  std::vector<uint64_t> sink(threads);
  std::vector<double> gbps;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    pool.parallel_for(threads, [&](int64_t t, int) {
      const size_t begin = words * t / threads, end = words * (t + 1) / threads;
      sink[t] += sum(buf.as<uint64_t>() + begin, end - begin);
    });
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    gbps.push_back(static_cast<double>(bytes) / s / 1e9);
  }
  volatile uint64_t keep = sink[0];
  (void)keep;
  return summarize(gbps);
}

ProbeResult probe_bf16_compute(ThreadPool& pool, int reps, bool* bf16) {
  const bool has_bf16 = cpu_has_avx512_bf16();
  if (bf16) *bf16 = has_bf16;
  const int threads = pool.size();
  const int64_t iterations = has_bf16 ? 24'000'000 : 6'000'000;  // some tens of milliseconds
  const double flops_per_iteration = has_bf16 ? 16.0 * 64.0 : 16.0 * 8.0 * 2.0;
  std::vector<double> sink(threads), gflops;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    pool.parallel_for(threads, [&](int64_t t, int) {
      sink[t] += has_bf16 ? kAvx512Dpbf16Probe(iterations) : fma_loop(iterations);
    });
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    gflops.push_back(flops_per_iteration * static_cast<double>(iterations) * threads / s / 1e9);
  }
  volatile double keep = sink[0];
  (void)keep;
  return summarize(gflops);
}

}  // namespace bringup::cpu
