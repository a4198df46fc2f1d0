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

extern double (*const kAvx512Dpbf16Probe)(int64_t);  // micro_avx512.cpp
extern uint64_t (*const kAvx512ReadProbes[kReadMethods])(const uint64_t*,
                                                         size_t);  // micro_avx512.cpp

namespace {

using Clock = std::chrono::steady_clock;

ProbeResult summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v.back(), v[v.size() / 2]};
}

// Sums 64-bit words with independent accumulators: the loads, not the adds, set the pace. The
// portable form of the probe, prefetching kAhead bytes ahead unless 0 (non-temporal loads are
// not offered).
template <size_t kAhead>
uint64_t sum_words(const uint64_t* p, size_t n) {
  uint64_t a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0, h = 0;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    if constexpr (kAhead > 0) __builtin_prefetch(p + i + kAhead / 8);
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

const char* read_method_name(int method) {
  switch (static_cast<ReadMethod>(method)) {
    case ReadMethod::kPlain:
      return "64-byte loads";
    case ReadMethod::kPrefetch1K:
      return "64-byte loads, prefetch 1 KiB ahead";
    case ReadMethod::kPrefetch4K:
      return "64-byte loads, prefetch 4 KiB ahead";
    case ReadMethod::kNonTemporal:
      return "non-temporal loads, prefetchnta";
  }
  return "?";
}

ProbeResult better(const ProbeResult& a, const ProbeResult& b) {
  return b.best > a.best ? b : a;
}

ProbeResult probe_memory_read(ThreadPool& pool, size_t bytes, int reps) {
  AlignedBuffer buf(bytes, AlignedBuffer::Pages::kHuge);  // as the weights are
  std::memset(buf.as<char>(), 1, bytes);                  // back every page
  const int threads = pool.size();
  // Each thread's part starts on a 64-byte line, as stream loads need.
  const size_t lines = bytes / 64;
  // 64-byte loads where the CPU has them: the probe should find the limit, not the loop's.
  const bool avx512 = cpu_has_avx512_bf16();
  std::vector<uint64_t> sink(threads);
  ProbeResult result{0, 0};
  for (int method = 0; method < kReadMethods; ++method) {
    uint64_t (*sum)(const uint64_t*, size_t) = nullptr;
    if (avx512) {
      sum = kAvx512ReadProbes[method];
    } else {
      constexpr uint64_t (*kPortable[kReadMethods])(const uint64_t*, size_t) = {
          sum_words<0>, sum_words<1024>, sum_words<4096>, nullptr};
      sum = kPortable[method];
    }
    if (!sum) continue;
    std::vector<double> gbps;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = Clock::now();
      pool.parallel_for(threads, [&](int64_t t, int) {
        const size_t begin = lines * t / threads * 8, end = lines * (t + 1) / threads * 8;
        sink[t] += sum(buf.as<uint64_t>() + begin, end - begin);
      });
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      gbps.push_back(static_cast<double>(lines * 64) / s / 1e9);
    }
    ProbeResult r = summarize(gbps);
    r.method = method;
    result = better(result, r);
  }
  volatile uint64_t keep = sink[0];
  (void)keep;
  return result;
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
