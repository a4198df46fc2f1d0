// Decode attention at depth: one query row per sequence over a paged KV cache of DEPTH positions,
// per cache format, at Qwen2-0.5B's and Arcee-Spark's head shapes (one layer a call, over copies
// of it that add up to 1 GiB, so that the cache comes from memory as in a model). What a decoded
// token pays for its context: "KV GB/s" is the cache bytes read per second, to set beside the
// machine's read bandwidth (`bench` probes it); "GFLOP/s" is the q.k and p.v multiply-adds.
//   build/bench/attention_bench [--benchmark_filter=bf16]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "device/cpu_device.h"
#include "ops/ops.h"

namespace bringup {
namespace {

struct HeadShape {
  const char* name;
  int64_t q_heads, kv_heads, head_dim;
};
constexpr HeadShape kShapes[] = {{"qwen2-0.5b", 14, 2, 64}, {"arcee-spark", 28, 4, 128}};
constexpr int64_t kBlock = 32;
constexpr int64_t kColdBytes = int64_t{1} << 30;

void BM_DecodeAttention(benchmark::State& state, HeadShape s, CacheDType dtype) {
  static CpuDevice dev(0);
  const int64_t depth = state.range(0);
  const int64_t blocks = depth / kBlock, row = cache_row_bytes(dtype, s.head_dim);
  // Blocks in a scrambled order, as a pool hands them out after some churn.
  std::vector<int32_t> table(static_cast<size_t>(blocks));
  std::iota(table.begin(), table.end(), 0);
  std::shuffle(table.begin(), table.end(), std::mt19937(3));
  // Copies of the layer, taken in turn, so the caches read add up to kColdBytes as a model's
  // layers do: a decoded token reads its cache from memory, not from the last level cache.
  const int64_t layer_bytes = blocks * s.kv_heads * kBlock * row;
  const int64_t layers =
      std::max<int64_t>(1, (kColdBytes + 2 * layer_bytes - 1) / (2 * layer_bytes));
  std::vector<std::byte> k(static_cast<size_t>(layers * layer_bytes)), v(k.size());
  KvView kv;
  kv.dtype = dtype;
  kv.k = k.data();
  kv.v = v.data();
  kv.kv_heads = s.kv_heads;
  kv.head_dim = s.head_dim;
  kv.block_size = kBlock;
  kv.block_table = table.data();
  kv.table_blocks = blocks;
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(s.head_dim));
  for (int64_t h = 0; h < s.kv_heads; ++h) {
    for (int64_t p = 0; p < depth; ++p) {
      for (void* base : {kv.k, kv.v}) {
        for (float& x : values) x = dist(rng);
        store_cache_row(dtype, values.data(), s.head_dim, kv.row(base, h, p));
      }
    }
  }
  for (int64_t l = 1; l < layers; ++l) {
    std::copy_n(k.begin(), layer_bytes, k.begin() + l * layer_bytes);
    std::copy_n(v.begin(), layer_bytes, v.begin() + l * layer_bytes);
  }
  Tensor q({s.q_heads, 1, s.head_dim}), out;
  for (int64_t i = 0; i < q.numel(); ++i) q.data()[i] = dist(rng);
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  int64_t layer = 0;
  for (auto _ : state) {
    kv.k = k.data() + layer * layer_bytes;
    kv.v = v.data() + layer * layer_bytes;
    layer = (layer + 1) % layers;
    ops::scaled_dot_product_attention_decode(dev, q, kv, depth - 1, scale, out);
    benchmark::DoNotOptimize(out.data());
  }
  const double calls = static_cast<double>(state.iterations());
  state.counters["KV GB/s"] = benchmark::Counter(2.0 * static_cast<double>(layer_bytes) * calls,
                                                 benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(4.0 * static_cast<double>(s.q_heads * depth * s.head_dim) * calls / 1e9,
                         benchmark::Counter::kIsRate);
}

void register_all() {
  for (const HeadShape& s : kShapes) {
    for (CacheDType d : {CacheDType::kF32, CacheDType::kBf16, CacheDType::kBfp8}) {
      const std::string name =
          std::string("decode_attention/") + std::string(cache_dtype_name(d)) + "/" + s.name;
      benchmark::RegisterBenchmark(name.c_str(), BM_DecodeAttention, s, d)
          ->ArgName("depth")
          ->Arg(8192)
          ->Arg(32768)
          ->Unit(benchmark::kMillisecond)
          ->MinTime(0.5)
          ->UseRealTime();
    }
  }
}

}  // namespace
}  // namespace bringup

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  bringup::register_all();
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
