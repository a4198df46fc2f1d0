// bringup bench: llama-bench's pp (prompt processing) and tg (text generation) tests, with this
// machine's bandwidth and compute limits measured in the same run so that speeds read as shares
// of them, plus time to first token, load time and peak resident memory; with --batch, decode of
// B sequences together in batched steps (aggregate tokens/s, weights read once per step).
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/thread_pool.h"
#include "io/json_fields.h"
#include "kernels/cpu/probes.h"
#include "models/memory_plan.h"
#include "models/weight_cache.h"
#include "runtime/generate.h"

namespace bringup::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct BenchArgs {
  ModelArgs model;
  int64_t prompt = 512, gen = 128;
  int64_t depth = 0;  // tokens already in the cache when pp and tg start (llama-bench's -d)
  int reps = 3;
  bool json = false;
  size_t probe_bytes = size_t{1} << 30;
  std::vector<int64_t> batch;  // sequence counts for batched decode
};

struct Stats {
  double mean = 0, stdev = 0;
};

Stats stats(const std::vector<double>& v) {
  Stats s;
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  for (double x : v) s.stdev += (x - s.mean) * (x - s.mean);
  s.stdev = v.size() > 1 ? std::sqrt(s.stdev / static_cast<double>(v.size() - 1)) : 0.0;
  return s;
}

size_t peak_rss() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

std::vector<int32_t> synthetic_ids(int64_t n, int64_t vocab, uint64_t seed) {
  std::vector<int32_t> ids(n);
  for (auto& id : ids) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    id = static_cast<int32_t>((seed >> 33) % static_cast<uint64_t>(vocab));
  }
  return ids;
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

constexpr int64_t kBatchPrompt = 8;  // prompt tokens of each sequence before batched decode

struct BatchResult {
  int64_t sequences;
  Stats tok_s;  // aggregate: every sequence's tokens together
};

// `gen` decode steps of B sequences together, each step one row per sequence.
BatchResult bench_batch(Model& model, int64_t b, int64_t gen, int reps) {
  const ModelConfig& c = model.config();
  const size_t vocab = static_cast<size_t>(c.vocab_size);
  std::vector<double> rates;
  for (int r = 0; r < reps; ++r) {
    std::vector<std::unique_ptr<Sequence>> seqs;
    std::vector<BatchRow> rows;
    for (int64_t i = 0; i < b; ++i) {
      seqs.push_back(model.new_sequence());
      const std::vector<int32_t> prompt = synthetic_ids(kBatchPrompt, c.vocab_size, 100 + i);
      for (int64_t j = 0; j < kBatchPrompt; ++j) {
        rows.push_back({seqs.back().get(), prompt[j], j, j + 1 == kBatchPrompt});
      }
    }
    std::vector<int32_t> next(b);
    std::span<const float> logits = model.step(rows);  // the prompts, in one step
    const auto t0 = Clock::now();
    for (int64_t step = 0; step < gen; ++step) {
      rows.clear();
      for (int64_t i = 0; i < b; ++i) {
        next[i] = argmax(logits.subspan(i * vocab, vocab));
        rows.push_back({seqs[i].get(), next[i], seqs[i]->length(), true});
      }
      logits = model.step(rows);
    }
    rates.push_back(static_cast<double>(b * gen) / seconds_since(t0));
  }
  return {b, stats(rates)};
}

int run_bench(const BenchArgs& a) {
  if (a.prompt < 1 || a.gen < 1 || a.reps < 1) throw Error("bench: -p, -n and -r must be positive");
  if (a.depth < 0) throw Error("bench: -d must be 0 or more");
  // The limits are probed right before and right after the timed runs, and the better of the
  // two is the limit: the machine is shared, and a limit probed at a bad moment would flatter.
  const Limits before = probe_limits(a.model.threads, a.probe_bytes);

  ModelArgs margs = a.model;
  if (margs.max_seq_len == 0) {
    margs.max_seq_len = a.depth + std::max(a.prompt, a.gen + kBatchPrompt);
  }
  int64_t max_batch = 1;
  for (int64_t b : a.batch) {
    if (b < 1 || b > 1024) throw Error("bench: --batch sizes must be in 1..1024");
    max_batch = std::max(max_batch, b);
  }
  if (max_batch * kBatchPrompt > 512 && !a.batch.empty()) {
    throw Error("bench: --batch sizes above 64 need a prompt step larger than 512 rows");
  }
  LoadedModel m = load_model(margs, max_batch, max_batch);  // logits of one row per sequence
  Model& model = *m.model;
  // A load from the packed-weight cache, against reading that file alone.
  const WeightCacheReport& cache = model.weight_cache();
  const double cache_read_s = cache.state == WeightCacheReport::State::kLoaded
                                  ? time_file_read(cache.file, device_threads(*m.device))
                                  : 0.0;
  const ModelConfig& c = model.config();
  const std::vector<int32_t> prompt = synthetic_ids(a.prompt, c.vocab_size, 1);
  const std::vector<int32_t> context =
      synthetic_ids(std::max<int64_t>(a.depth, 1), c.vocab_size, 2);
  // The context is computed once, not timed; each run continues a fork of it (sharing its KV
  // blocks), so a deep -d costs one prefill rather than one per run. tg decodes from at least one
  // token.
  auto context_seq = model.new_sequence();
  const int32_t context_next =
      argmax(model.prefill(*context_seq, std::span(context).first(std::max<int64_t>(a.depth, 1))));
  const auto at_depth = [&](int64_t depth) {
    if (depth == 0) return std::make_pair(model.new_sequence(), int32_t{1});
    return std::make_pair(model.fork(*context_seq), context_next);
  };

  {  // warm-up: pages, caches, thread start
    auto seq = model.new_sequence();
    model.prefill(*seq, std::span(prompt).first(std::min<size_t>(prompt.size(), 8)));
    model.decode(*seq, 1);
  }
  std::vector<double> pp, tg, ttft;
  for (int r = 0; r < a.reps; ++r) {
    auto seq = at_depth(a.depth).first;
    const auto t0 = Clock::now();
    const auto logits = model.prefill(*seq, prompt);
    argmax(logits);
    const double s = seconds_since(t0);
    pp.push_back(static_cast<double>(a.prompt) / s);
    ttft.push_back(s * 1e3);
  }
  // The decode runs also count what synchronising the device's threads costs them.
  double tg_seconds = 0;
  m.device->time_sync(true);
  for (int r = 0; r < a.reps; ++r) {
    auto [seq, id] = at_depth(std::max<int64_t>(a.depth, 1));
    const auto t0 = Clock::now();
    for (int64_t i = 0; i < a.gen; ++i) id = argmax(model.decode(*seq, id));
    const double s = seconds_since(t0);
    tg_seconds += s;
    tg.push_back(static_cast<double>(a.gen) / s);
  }
  const SyncStats sync = m.device->sync_stats();
  m.device->time_sync(false);
  const double tokens = static_cast<double>(a.gen * a.reps);
  const double sync_pct = 100.0 * (sync.dispatch_s + sync.wait_s) / tg_seconds;

  std::vector<BatchResult> batches;
  for (int64_t b : a.batch) batches.push_back(bench_batch(model, b, a.gen, a.reps));

  const Stats pps = stats(pp), tgs = stats(tg), ttfts = stats(ttft);
  const Limits after = probe_limits(a.model.threads, a.probe_bytes);
  const Limits limits = better(before, after);
  // The plan of what this run holds: the KV blocks of its largest batch, not the whole pool
  // (whose untouched pages are not resident).
  ModelOptions planned;
  planned.precision = model.precision();
  planned.kv_precision = model.kv_precision();
  planned.max_seq_len = model.max_seq_len();
  planned.kv_budget_tokens = model.max_seq_len() * max_batch;
  planned.max_logit_rows = max_batch;
  const MemoryPlan plan = plan_memory(m.checkpoint, planned, *m.device, 0);
  // A decoded token reads every weight and the K and V of every position before it (on average
  // the depth plus half the generated tokens).
  const KvPoolStats pool = model.kv_pool();
  const double kv_per_position = static_cast<double>(model.kv_cache_bytes()) /
                                 static_cast<double>(pool.total_blocks * pool.block_size);
  const double kv_per_token =
      kv_per_position *
      (static_cast<double>(std::max<int64_t>(a.depth, 1)) + static_cast<double>(a.gen + 1) / 2);
  const double weights_per_token = static_cast<double>(model.weight_bytes_per_token());
  const double bytes_per_token = weights_per_token + kv_per_token;
  const double embed = static_cast<double>(c.vocab_size * c.hidden_size);
  const double layer_params =
      static_cast<double>(plan.parameters) - embed * (c.tie_word_embeddings ? 1 : 2);
  // Prefill multiplies every layer weight once per token and the lm_head once per prompt; the
  // token at position p also multiplies its queries with p + 1 keys and values in every layer.
  const double positions = static_cast<double>(a.prompt) *
                           (static_cast<double>(a.depth) + static_cast<double>(a.prompt + 1) / 2);
  const double attention_flops =
      4.0 * static_cast<double>(c.num_hidden_layers * c.q_dim()) * positions;
  const double flops_per_prompt =
      2.0 * layer_params * static_cast<double>(a.prompt) + 2.0 * embed + attention_flops;
  const double bw = limits.bandwidth.best, compute = limits.compute.best;
  const double tg_pct = 100.0 * tgs.mean * bytes_per_token / (bw * 1e9);
  const double pp_pct =
      100.0 * pps.mean / static_cast<double>(a.prompt) * flops_per_prompt / (compute * 1e9);
  // A decoded token multiplies every layer weight and the lm_head once.
  const double flops_per_token = 2.0 * layer_params + 2.0 * embed;
  const size_t rss = peak_rss();
  const std::string name = m.checkpoint.name();
  const std::string prec(precision_name(model.precision()));
  const std::string kv_prec(kv_precision_name(model.kv_precision(), model.precision()));

  if (a.json) {
    const Json j = {{"model", name},
                    {"precision", prec},
                    {"kv_precision", kv_prec},
                    {"threads", device_threads(*m.device)},
                    {"n_prompt", a.prompt},
                    {"n_gen", a.gen},
                    {"n_depth", a.depth},
                    {"kv_bytes_per_token", kv_per_token},
                    {"repetitions", a.reps},
                    {"pp_tok_s", pps.mean},
                    {"pp_tok_s_stdev", pps.stdev},
                    {"tg_tok_s", tgs.mean},
                    {"tg_tok_s_stdev", tgs.stdev},
                    {"ttft_ms", ttfts.mean},
                    {"load_s", m.load_seconds},
                    {"weight_cache", weight_cache_state_name(cache.state)},
                    {"weight_cache_read_s", cache_read_s},
                    {"weight_cache_mapped", cache.mapped},
                    {"peak_rss_bytes", rss},
                    {"planned_bytes", plan.total()},
                    {"weight_bytes", model.weight_bytes()},
                    {"kv_cache_bytes", model.kv_cache_bytes()},
                    {"weight_bytes_per_token", model.weight_bytes_per_token()},
                    {"bandwidth_gb_s", bw},
                    {"bandwidth_gb_s_median", limits.bandwidth.median},
                    {"bandwidth_gb_s_before", before.bandwidth.best},
                    {"bandwidth_gb_s_after", after.bandwidth.best},
                    {"bandwidth_probe", cpu::read_method_name(limits.bandwidth.method)},
                    {"compute_gflop_s", compute},
                    {"compute_gflop_s_median", limits.compute.median},
                    {"compute_probe", limits.bf16 ? "bf16 vdpbf16ps" : "fp32 fma"},
                    {"tg_pct_of_bandwidth_limit", tg_pct},
                    {"tg_parallel_ops_per_token", static_cast<double>(sync.ops) / tokens},
                    {"tg_sync_pct", sync_pct},
                    {"pp_pct_of_compute_limit", pp_pct},
                    {"pp_gflop_per_token", flops_per_prompt / static_cast<double>(a.prompt) / 1e9}};
    Json out = j;
    for (const BatchResult& b : batches) {
      out["batch"].push_back(
          {{"sequences", b.sequences},
           {"tg_tok_s", b.tok_s.mean},
           {"tg_tok_s_stdev", b.tok_s.stdev},
           {"x_single_sequence", b.tok_s.mean / tgs.mean},
           {"pct_of_compute_limit", 100.0 * b.tok_s.mean * flops_per_token / (compute * 1e9)}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("| model | size | params | backend | threads | precision | test | t/s |\n");
  std::printf("| --- | ---: | ---: | --- | ---: | --- | ---: | ---: |\n");
  const std::string size = format_bytes(model.weight_bytes());
  char params[32];
  std::snprintf(params, sizeof params, "%.2f B", static_cast<double>(plan.parameters) / 1e9);
  const std::string at =
      a.depth > 0 ? " @ d" + std::to_string(a.depth) : std::string();  // llama-bench's label
  std::printf("| %s | %s | %s | cpu | %d | %s | pp%lld%s | %.2f ± %.2f |\n", name.c_str(),
              size.c_str(), params, device_threads(*m.device), prec.c_str(),
              static_cast<long long>(a.prompt), at.c_str(), pps.mean, pps.stdev);
  std::printf("| %s | %s | %s | cpu | %d | %s | tg%lld%s | %.2f ± %.2f |\n", name.c_str(),
              size.c_str(), params, device_threads(*m.device), prec.c_str(),
              static_cast<long long>(a.gen), at.c_str(), tgs.mean, tgs.stdev);
  for (const BatchResult& b : batches) {
    std::printf("| %s | %s | %s | cpu | %d | %s | tg%lld x %lld seqs | %.2f ± %.2f |\n",
                name.c_str(), size.c_str(), params, device_threads(*m.device), prec.c_str(),
                static_cast<long long>(a.gen), static_cast<long long>(b.sequences), b.tok_s.mean,
                b.tok_s.stdev);
  }
  std::printf(
      "\nmachine, measured in this run: memory read %.1f GB/s (%s; best of 5, median %.1f; before "
      "the runs %.1f, after %.1f), %s %.0f GFLOP/s (best of 5, median %.0f)\n",
      bw, cpu::read_method_name(limits.bandwidth.method), limits.bandwidth.median,
      before.bandwidth.best, after.bandwidth.best, limits.bf16 ? "bf16 multiply" : "fp32 FMA",
      compute, limits.compute.median);
  std::printf(
      "tg%lld%s: %.2f tok/s x %.3f GB read per token (weights %.3f, KV cache %.3f in %s) = %.1f "
      "GB/s, %.0f%% of the bandwidth limit (%.2f tok/s)\n",
      static_cast<long long>(a.gen), at.c_str(), tgs.mean, bytes_per_token / 1e9,
      weights_per_token / 1e9, kv_per_token / 1e9, kv_prec.c_str(),
      tgs.mean * bytes_per_token / 1e9, tg_pct, bw * 1e9 / bytes_per_token);
  std::printf(
      "tg%lld%s threads: %.0f parallel ops per token; handing them out took %.1f%% of decode time "
      "and waiting for the slowest thread %.1f%% (%.1f us per op together)\n",
      static_cast<long long>(a.gen), at.c_str(), static_cast<double>(sync.ops) / tokens,
      100.0 * sync.dispatch_s / tg_seconds, 100.0 * sync.wait_s / tg_seconds,
      sync.ops ? 1e6 * (sync.dispatch_s + sync.wait_s) / static_cast<double>(sync.ops) : 0.0);
  if (tg_pct > 100.0) {
    std::printf(
        "note: decode read faster than the memory read probe: %.0f MB per token may stay in the "
        "CPU's caches, or the machine was busier while probing\n",
        bytes_per_token / 1e6);
  }
  std::printf(
      "pp%lld%s: %.2f tok/s x %.2f GFLOP per token (attention included) = %.0f GFLOP/s, %.0f%% of "
      "the compute limit (%.2f tok/s)\n",
      static_cast<long long>(a.prompt), at.c_str(), pps.mean,
      flops_per_prompt / static_cast<double>(a.prompt) / 1e9,
      pps.mean * flops_per_prompt / static_cast<double>(a.prompt) / 1e9, pp_pct,
      compute * 1e9 * static_cast<double>(a.prompt) / flops_per_prompt);
  for (const BatchResult& b : batches) {
    std::printf(
        "tg%lld x %lld sequences: %.2f tok/s together = %.2f x the single-sequence rate, %.1f%% of "
        "the compute limit (%.2f GFLOP per token)\n",
        static_cast<long long>(a.gen), static_cast<long long>(b.sequences), b.tok_s.mean,
        b.tok_s.mean / tgs.mean, 100.0 * b.tok_s.mean * flops_per_token / (compute * 1e9),
        flops_per_token / 1e9);
  }
  std::printf("time to first token (%lld-token prompt%s) %.1f ± %.1f ms; load %.2f s\n",
              static_cast<long long>(a.prompt),
              a.depth > 0 ? (" after " + std::to_string(a.depth) + " cached").c_str() : "",
              ttfts.mean, ttfts.stdev, m.load_seconds);
  if (cache.state == WeightCacheReport::State::kLoaded) {
    std::printf(
        "load from the weight cache (%.2f GB, %s): %.2f s; reading that file alone: %.2f s "
        "(%.2fx)\n",
        static_cast<double>(cache.bytes) / 1e9, cache.mapped ? "mapped" : "copied", m.load_seconds,
        cache_read_s, m.load_seconds / cache_read_s);
  }
  std::printf(
      "peak resident %s; plan for this run %s (%+.1f%%: weights %s, kv blocks of %lld sequences "
      "%s, buffers %s); kv pool reserved %s\n",
      format_bytes(rss).c_str(), format_bytes(plan.total()).c_str(),
      100.0 * (static_cast<double>(plan.total()) - static_cast<double>(rss)) /
          static_cast<double>(rss),
      format_bytes(plan.weight_bytes).c_str(), static_cast<long long>(max_batch),
      format_bytes(plan.kv_cache_bytes).c_str(), format_bytes(plan.working_bytes()).c_str(),
      format_bytes(model.kv_cache_bytes()).c_str());
  return 0;
}

}  // namespace

std::function<int()> add_bench(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* sub =
      app.add_subcommand("bench", "Prompt processing and generation speed (llama-bench)");
  add_model_args(sub, args->model);
  sub->add_option("-p,--n-prompt", args->prompt, "prompt tokens for pp")->capture_default_str();
  sub->add_option("-n,--n-gen", args->gen, "generated tokens for tg")->capture_default_str();
  sub->add_option("-d,--n-depth", args->depth,
                  "tokens already in the KV cache when pp and tg start (llama-bench's -d)")
      ->capture_default_str();
  sub->add_option("-r,--repetitions", args->reps, "repetitions of each test")
      ->capture_default_str();
  sub->add_option("--batch", args->batch,
                  "also decode this many sequences together, e.g. 1,4,16 (aggregate tok/s)")
      ->delimiter(',');
  sub->add_flag("--json", args->json, "print one JSON object");
  return [args] { return run_bench(*args); };
}

}  // namespace bringup::cli
