// Tokenizer throughput on tinyshakespeare (1.1 MB), one thread: encode (cold: every call starts
// with an empty BPE cache, as a new document would) and decode. Google Benchmark reports bytes/s.
//   build/bench/tokenizer_bench [--benchmark_repetitions=5]
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "bringup/tokenizer.h"

namespace {

const std::filesystem::path kData = BRINGUP_TEST_DATA;

std::string play() {
  std::ifstream in(kData / "tinyshakespeare.txt");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void BM_EncodeCold(benchmark::State& state) {
  const std::string text = play();
  for (auto _ : state) {
    state.PauseTiming();
    const bringup::Tokenizer tok = bringup::Tokenizer::load(kData / "tokenizer");
    state.ResumeTiming();
    benchmark::DoNotOptimize(tok.encode(text));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

void BM_EncodeWarm(benchmark::State& state) {
  const std::string text = play();
  const bringup::Tokenizer tok = bringup::Tokenizer::load(kData / "tokenizer");
  tok.encode(text);
  for (auto _ : state) benchmark::DoNotOptimize(tok.encode(text));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

void BM_Decode(benchmark::State& state) {
  const std::string text = play();
  const bringup::Tokenizer tok = bringup::Tokenizer::load(kData / "tokenizer");
  const std::vector<int32_t> ids = tok.encode(text);
  for (auto _ : state) benchmark::DoNotOptimize(tok.decode(ids));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

BENCHMARK(BM_EncodeCold)->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_EncodeWarm)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
