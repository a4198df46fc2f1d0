// linear at Arcee-Spark's shapes for 1 to 32 rows: what a batched decode step costs per weight
// format, as bytes streamed (one row is a GEMV, bound by memory) and as multiply throughput (many
// rows are bound by compute). Rows share one read of the weights, so the time for R rows over the
// time for one says how well batching pays.
//   build/bench/matmul_bench [--benchmark_filter=bfp8]
#include <benchmark/benchmark.h>

#include <random>

#include "device/cpu_device.h"
#include "ops/ops.h"

namespace bringup {
namespace {

struct Shape {
  const char* name;
  int64_t n, k;
};
constexpr Shape kShapes[] = {{"gate_up", 2 * 18944, 3584}, {"down", 3584, 18944}};

void BM_Linear(benchmark::State& state, WeightFormat format, Shape shape) {
  static CpuDevice dev(0);
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<float> w(static_cast<size_t>(shape.n * shape.k));
  for (float& v : w) v = dist(rng);
  const HostMatrix m = HostMatrix::of(w.data(), shape.n, shape.k);
  const Weight weight = dev.upload_weight({&m, 1}, format);
  w = {};
  const int64_t rows = state.range(0);
  Tensor x({rows, shape.k}), out;
  for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = dist(rng);
  for (auto _ : state) {
    ops::linear(dev, x, weight, nullptr, out);
    benchmark::DoNotOptimize(out.data());
  }
  const double calls = static_cast<double>(state.iterations());
  state.counters["GB/s"] =
      benchmark::Counter(static_cast<double>(weight.bytes) * calls, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * static_cast<double>(rows * shape.n * shape.k) * calls / 1e9,
                         benchmark::Counter::kIsRate);
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(rows) * calls, benchmark::Counter::kIsRate);
}

void register_all() {
  for (const Shape& s : kShapes) {
    for (WeightFormat f : {WeightFormat::kBf16, WeightFormat::kBfp8}) {
      const std::string name =
          std::string("linear/") + std::string(weight_format_name(f)) + "/" + s.name;
      benchmark::RegisterBenchmark(name.c_str(), BM_Linear, f, s)
          ->ArgName("rows")
          ->Arg(1)
          ->Arg(2)
          ->Arg(4)
          ->Arg(8)
          ->Arg(16)
          ->Arg(32)
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
