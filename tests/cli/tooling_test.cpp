// The bring-up tooling: eval from prompts (KL divergence), reference files, compare finding a
// perturbed layer, synth, bench and plan, and their bad inputs.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../model/model_test_util.h"
#include "cli_runner.h"
#include "models/memory_plan.h"

namespace bringup {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json yt_metrics(const std::string& out) {
  const size_t at = out.rfind("YT_METRICS=");
  EXPECT_NE(at, std::string::npos) << out;
  return json::parse(out.substr(at + 11));
}

void expect_error(const std::vector<std::string>& args, const std::string& needle) {
  const test::CliResult r = test::run_cli(args);
  ASSERT_TRUE(r.exited) << "crashed: " << r.err;
  EXPECT_NE(r.code, 0);
  const auto lines = r.err_lines();
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().find(needle), std::string::npos) << r.err;
}

const std::string kGqa7 = test::golden("qwen2-gqa7-small").string();

// Plumbing: eval without a reference scores the fp32 path against the reference it just made
// itself, so 100% shows the command's wiring (prompt, steps, metrics line), not correctness.
TEST(EvalFromPrompt, PlumbingSelfReferenceAndPrefillDecodeModes) {
  auto r =
      test::run_cli({"eval", "--model", kGqa7, "--max-new-tokens", "20", "--precision", "fp32"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("Top-1 accuracy: 100.00% (1.0000)"), std::string::npos);
  EXPECT_NE(r.out.find("Top-5 accuracy: 100.00% (1.0000)"), std::string::npos);
  const json m = yt_metrics(r.out);
  EXPECT_EQ(m["total"], 20);
  EXPECT_EQ(m["prefill_len"], 12);  // the seed's default prompt, 1 .. 12
  EXPECT_EQ(m["kl_mean"].get<double>(), 0.0);
  auto pd = test::run_cli({"eval", "--model", kGqa7, "--max-new-tokens", "20", "--precision",
                           "fp32", "--prefill-decode"});
  const json n = yt_metrics(pd.out);
  EXPECT_EQ(n["mode"], "cpu-prefill-decode");
  EXPECT_EQ(n["top1"], m["top1"]);
  EXPECT_EQ(n["top5"], m["top5"]);
}

TEST(EvalFromPrompt, LowerPrecisionReportsKlDivergence) {
  test::TempDir dir("eval-kl");
  std::ofstream(dir / "ids.json") << "[5, 17, 300, 2000, 9, 44]";
  auto r = test::run_cli({"eval", "--model", kGqa7, "--prompt-ids-file",
                          (dir / "ids.json").string(), "--max-new-tokens", "16", "--precision",
                          "bfp8", "--metrics-json", (dir / "m.json").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* line : {"Mean    KLD:", "99.0%   KLD:", "Maximum KLD:", "RMS Δp"}) {
    EXPECT_NE(r.out.find(line), std::string::npos) << line;
  }
  const json m = json::parse(test::slurp(dir / "m.json"));
  EXPECT_EQ(m, yt_metrics(r.out));
  EXPECT_GT(m["kl_mean"].get<double>(), 0.0);
  EXPECT_LE(m["kl_mean"].get<double>(), m["kl_max"].get<double>());
  EXPECT_EQ(m["prefill_len"], 6);
}

// Plumbing: a reference written by the fp32 path scores 100% against that path; what this checks
// is the file's round trip (ids, top-5, logits and hidden states), not the model.
TEST(Reference, PlumbingRoundTripThroughEvalWithLogits) {
  test::TempDir dir("ref");
  auto r = test::run_cli({"reference", "--model", kGqa7, "--prompt-ids", "3 1 4 1 5 9 2 6",
                          "--max-new-tokens", "12", "--logits", "--hidden-states", "--out",
                          (dir / "ref.json").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  const json ref = json::parse(test::slurp(dir / "ref.json"));
  EXPECT_EQ(ref["format"], "bringup-reference/1");
  EXPECT_EQ(ref["weights_sha256"],
            "115ceb38ade0ec43c616158e78de9db7482ac84c1f2a1a0605345080637d8462");
  EXPECT_EQ(ref["cases"][0]["reference_ids"].size(), 12u);
  EXPECT_TRUE(fs::exists(dir / ref["cases"][0]["logits_npy"].get<std::string>()));
  auto e = test::run_cli({"eval", "--model", kGqa7, "--reference", (dir / "ref.json").string(),
                          "--precision", "fp32"});
  ASSERT_EQ(e.code, 0) << e.err;
  const json m = yt_metrics(e.out);
  EXPECT_EQ(m["top1"], 1.0);
  EXPECT_EQ(m["kl_steps"], 12);
  EXPECT_LT(m["kl_mean"].get<double>(), 1e-9);
}

TEST(Compare, NamesThePerturbedLayer) {
  test::TempDir dir("compare");
  const std::string clean = (dir / "clean").string(), bent = (dir / "bent").string();
  for (const auto& [out, extra] :
       {std::pair{clean, std::string()}, std::pair{bent, std::string("2")}}) {
    std::vector<std::string> args = {
        "synth",  "--config", kGqa7 + "/config.json", "--layers", "5",
        "--seed", "11",       "--shard-size",         "8MiB",     "--out",
        out};
    if (!extra.empty()) {
      args.insert(args.end(), {"--perturb-layer", extra, "--perturb-scale", "0.3"});
    }
    ASSERT_EQ(test::run_cli(args).code, 0);
  }
  ASSERT_TRUE(fs::exists(dir / "clean/model.safetensors.index.json"));  // sharded
  ASSERT_EQ(test::run_cli({"reference", "--model", clean, "--prompt-ids", "1 2 3 4 5 6 7 8",
                           "--max-new-tokens", "2", "--hidden-states", "--out",
                           (dir / "clean/ref.json").string()})
                .code,
            0);
  auto r = test::run_cli({"compare", "--model", bent, "--reference",
                          (dir / "clean/ref.json").string(), "--precision", "fp32"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("first divergence: model.layers.2 mlp"), std::string::npos) << r.out;
  // Against its own fp32 path, bfp8-mixed stays close in every block.
  auto j = test::run_cli({"compare", "--model", clean, "--precision", "bfp8-mixed", "--json"});
  ASSERT_EQ(j.code, 0) << j.err;
  const json report = json::parse(j.out);
  EXPECT_TRUE(report["first_divergence"].is_null());
  EXPECT_EQ(report["rows"].size(), 2u + 2 * 5);
}

// A bfp8 KV cache: head_dim / 16 + head_dim bytes a row (72 for qwen2-gqa7-small's 64, against
// bf16's 128), the same in the plan and in the built pool.
TEST(Plan, CountsABfp8KvCache) {
  const Checkpoint ck = Checkpoint::open(test::golden("qwen2-gqa7-small"));
  const ModelConfig& c = ck.config();
  auto dev = make_cpu_device(2);
  ModelOptions o;
  o.max_seq_len = 256;
  o.precision = Precision::kBf16;
  o.kv_budget_tokens = 320;
  const MemoryPlan bf16 = plan_memory(c, o, *dev, 0);
  o.kv_precision = KvPrecision::kBfp8;
  const MemoryPlan bfp8 = plan_memory(c, o, *dev, 0);
  const size_t rows = static_cast<size_t>(2 * c.num_hidden_layers * c.num_key_value_heads);
  EXPECT_EQ(bf16.kv_bytes_per_token, rows * 2 * c.head_dim);
  EXPECT_EQ(bfp8.kv_bytes_per_token, rows * (c.head_dim / 16 + c.head_dim));
  auto model = build_model(ck, *dev, o);
  EXPECT_EQ(bfp8.kv_cache_bytes, model->kv_cache_bytes());
  EXPECT_EQ(model->kv_precision(), KvPrecision::kBfp8);
  auto r = test::run_cli({"plan", "--model", kGqa7, "--kv-precision", "bfp8", "--max-seq-len",
                          "256", "--kv-budget", "320"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("bfp8"), std::string::npos) << r.out;
}

TEST(Plan, MatchesTheBuiltModel) {
  for (Precision p :
       {Precision::kFp32, Precision::kBf16, Precision::kBfp8Mixed, Precision::kBfp8}) {
    for (const char* name : {"qwen2-gqa7-small", "qwen2-tied-hd64"}) {
      const Checkpoint ck = Checkpoint::open(test::golden(name));
      auto dev = make_cpu_device(2);
      ModelOptions o;
      o.max_seq_len = 256;
      o.precision = p;
      o.kv_budget_tokens = 320;
      o.prefill_chunk = 64;
      auto model = build_model(ck, *dev, o);
      const MemoryPlan plan = plan_memory(ck.config(), o, *dev, 0);
      EXPECT_EQ(plan.weight_bytes, model->weight_bytes()) << name << " " << precision_name(p);
      EXPECT_EQ(plan.kv_cache_bytes, model->kv_cache_bytes()) << name << " " << precision_name(p);
      EXPECT_EQ(plan.kv_budget_tokens, model->kv_pool().budget_tokens);
      EXPECT_EQ(plan.activation_bytes, model->activation_bytes()) << name;
      // Left to the default, the pool takes what fits beside the rest of a given memory size.
      o.kv_budget_tokens = 0;
      const MemoryPlan fitted = plan_memory(ck.config(), o, *dev, size_t{1} << 30);
      EXPECT_TRUE(fitted.kv_budget_fitted);
      EXPECT_LE(fitted.total(), size_t{1} << 30);
      EXPECT_GT(fitted.total() + fitted.kv_bytes_per_token * 32, (size_t{1} << 30) * 9 / 10);
    }
  }
  auto r = test::run_cli({"plan", "--model", kGqa7, "--device-memory", "12GiB"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("fits in 12.00 GiB: yes"), std::string::npos) << r.out;
  r = test::run_cli({"plan", "--model", kGqa7, "--device-memory", "1MiB"});
  EXPECT_NE(r.out.find("fits in 1.0 MiB: no"), std::string::npos) << r.out;
}

// plan says what bounds a sequence: a scaled context and Qwen2's attention window.
TEST(Plan, ShowsTheContextAndAttentionWindow) {
  auto r = test::run_cli({"plan", "--model", test::golden("qwen2-yarn-small").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("context: 2048 positions (yarn RoPE scaling, factor 4 over 512); "
                       "attention window: 512 positions"),
            std::string::npos)
      << r.out;
  r = test::run_cli({"plan", "--model", test::golden("llama-gqa4-small").string()});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("context: 4096 positions; attention window: all positions"),
            std::string::npos)
      << r.out;
}

TEST(Bench, ReportsEveryField) {
  auto r = test::run_cli({"bench", "--model", kGqa7, "-p", "32", "-n", "8", "-r", "2", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  for (const char* key : {"pp_tok_s", "tg_tok_s", "ttft_ms", "load_s", "peak_rss_bytes",
                          "weight_bytes_per_token", "bandwidth_gb_s", "compute_gflop_s",
                          "tg_pct_of_bandwidth_limit", "pp_pct_of_compute_limit"}) {
    ASSERT_TRUE(j.contains(key)) << key;
    EXPECT_GT(j[key].get<double>(), 0.0) << key;
  }
  // The bandwidth limit is the better of the probes before and after the timed runs, each the
  // fastest of its load methods.
  EXPECT_EQ(j["bandwidth_gb_s"].get<double>(), std::max(j["bandwidth_gb_s_before"].get<double>(),
                                                        j["bandwidth_gb_s_after"].get<double>()));
  EXPECT_GE(j["bandwidth_gb_s"].get<double>(), j["bandwidth_gb_s_median"].get<double>());
  EXPECT_NE(j["bandwidth_probe"].get<std::string>().find("loads"), std::string::npos);
  // What synchronising the threads costs decode: every op of a step is handed out to two
  // threads; one thread has nothing to synchronise.
  for (const char* threads : {"1", "2"}) {
    auto r = test::run_cli({"bench", "--model", kGqa7, "-p", "8", "-n", "4", "-r", "1", "--json",
                            "--threads", threads});
    ASSERT_EQ(r.code, 0) << r.err;
    const json s = json::parse(r.out);
    const double ops = s["tg_parallel_ops_per_token"], pct = s["tg_sync_pct"];
    if (std::string(threads) == "1") {
      EXPECT_EQ(ops, 0.0);
      EXPECT_EQ(pct, 0.0);
    } else {
      // At least the linears of every layer (qkv, o, gate/up, down) and the lm_head.
      const json config = json::parse(test::slurp(fs::path(kGqa7) / "config.json"));
      EXPECT_GE(ops, 4.0 * config["num_hidden_layers"].get<double>() + 1) << r.out;
      EXPECT_GT(pct, 0.0);
      EXPECT_LT(pct, 100.0);
    }
  }
  auto t = test::run_cli({"bench", "--model", kGqa7, "-p", "16", "-n", "4", "-r", "1"});
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("| pp16 |"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("| tg4 |"), std::string::npos) << t.out;
}

// -d: pp and tg after tokens already in the cache, whose K and V a decoded token reads too.
TEST(Bench, DepthCountsTheKvCacheReadPerToken) {
  auto shallow =
      test::run_cli({"bench", "--model", kGqa7, "-p", "16", "-n", "4", "-r", "1", "--json"});
  auto deep = test::run_cli(
      {"bench", "--model", kGqa7, "-p", "16", "-n", "4", "-d", "300", "-r", "1", "--json"});
  ASSERT_EQ(deep.code, 0) << deep.err;
  const json s = json::parse(shallow.out), d = json::parse(deep.out);
  EXPECT_EQ(d["n_depth"], 300);
  // The same weights; K and V of 300 positions more (on average 300 + 2.5 against 1 + 2.5).
  EXPECT_EQ(d["weight_bytes_per_token"], s["weight_bytes_per_token"]);
  EXPECT_NEAR(d["kv_bytes_per_token"].get<double>() / s["kv_bytes_per_token"].get<double>(),
              302.5 / 3.5, 1e-6);
  auto t = test::run_cli({"bench", "--model", kGqa7, "-p", "16", "-n", "4", "-d", "40", "-r", "1"});
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("| pp16 @ d40 |"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("| tg4 @ d40 |"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("(16-token prompt after 40 cached)"), std::string::npos) << t.out;
  expect_error({"bench", "--model", kGqa7, "-d", "-1"}, "bench: -d must be 0 or more");
}

// --weight-cache: the first load writes the file, the next reads it (bench prints the load
// against reading the file alone), and a damaged file is rebuilt with one line saying why.
TEST(WeightCache, WrittenLoadedAndRebuiltWithOneLineNotices) {
  test::TempDir dir("weight-cache-cli");
  const std::string cache = (dir / "cache").string();
  auto generate = [&](const std::string& arg) {
    return test::run_cli({"generate", "--model", kGqa7, "--prompt-ids", "1,2,3", "--max-new-tokens",
                          "8", "--temperature", "0", "--weight-cache", arg});
  };
  auto cache_lines = [](const test::CliResult& r) {
    std::vector<std::string> lines;
    for (const std::string& l : r.err_lines()) {
      if (l.find("weight cache") != std::string::npos) lines.push_back(l);
    }
    return lines;
  };
  // Each run generates the same ids; `notice` is what its one cache line says, or "" for none.
  const test::CliResult first = generate(cache);
  ASSERT_EQ(first.code, 0) << first.err;
  auto expect_run = [&](const test::CliResult& r, const std::string& notice) {
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, first.out);
    const std::vector<std::string> lines = cache_lines(r);
    if (notice.empty()) {
      EXPECT_TRUE(lines.empty()) << r.err;
    } else {
      ASSERT_EQ(lines.size(), 1u) << r.err;
      EXPECT_NE(lines[0].find(notice), std::string::npos) << r.err;
    }
  };
  expect_run(first, "written");
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(cache)) files.push_back(e.path());
  ASSERT_EQ(files.size(), 1u);
  expect_run(generate(cache), "");

  // bench: the load from the cache against reading the file alone.
  const test::CliResult j = test::run_cli({"bench", "--model", kGqa7, "-p", "8", "-n", "2", "-r",
                                           "1", "--json", "--weight-cache", cache});
  ASSERT_EQ(j.code, 0) << j.err;
  EXPECT_EQ(json::parse(j.out)["weight_cache"], "loaded");
  EXPECT_GT(json::parse(j.out)["weight_cache_read_s"].get<double>(), 0.0);
  const test::CliResult text = test::run_cli(
      {"bench", "--model", kGqa7, "-p", "8", "-n", "2", "-r", "1", "--weight-cache", cache});
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("load from the weight cache"), std::string::npos) << text.out;

  // A flipped byte in the header, then a truncated file: each rebuilt, once, with the reason.
  {
    std::fstream f(files[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x5a');
  }
  expect_run(generate(cache), "corrupt header");
  fs::resize_file(files[0], fs::file_size(files[0]) / 2);
  expect_run(generate(cache), "truncated");
  expect_run(generate(cache), "");

  // off: neither read nor written; auto: the golden is far below its threshold.
  expect_run(generate("off"), "");
  expect_run(generate("auto"), "");
  EXPECT_FALSE(fs::exists(fs::path(kGqa7) / ".bringup-cache"));
  expect_error({"bench", "--model", kGqa7, "--weight-cache", ""},
               "--weight-cache: expected a directory, 'auto' or 'off'");
}

// A load from the weight cache copies each weight out of the mapped file and drops those pages as
// it goes: its peak memory is about the first load's (which converts the checkpoint), not that
// plus the whole file (2x when every page of the mapping stayed resident until the end).
TEST(WeightCache, CopiedLoadDoesNotKeepTheFileResident) {
  test::TempDir dir("weight-cache-rss");
  const std::string model = (dir / "model").string(), cache = (dir / "cache").string();
  // About 130 MB of bf16 weights, so that they, not the program, dominate the resident set.
  const test::CliResult made = test::run_cli(
      {"synth", "--preset", "qwen2-0.5b", "--layers", "4", "--vocab", "8192", "--out", model});
  ASSERT_EQ(made.code, 0) << made.err;
  auto peak = [&](const char* expected_cache_state) {
    const test::CliResult r =
        test::run_cli({"bench", "--model", model, "--precision", "bf16", "-p", "4", "-n", "1", "-r",
                       "1", "--kv-budget", "64", "--json", "--weight-cache", cache});
    EXPECT_EQ(r.code, 0) << r.err;
    const json j = json::parse(r.out);
    EXPECT_EQ(j["weight_cache"], expected_cache_state);
    return j["peak_rss_bytes"].get<double>();
  };
  const double written = peak("written"), loaded = peak("loaded");
  EXPECT_LT(loaded, 1.25 * written) << "written " << written << ", loaded " << loaded;
}

TEST(ToolingBadInput, Refusals) {
  test::TempDir dir("tooling-bad");
  expect_error({"compare", "--model", kGqa7, "--pcc", "1.5"}, "--pcc must be in (0, 1]");
  expect_error({"compare", "--model", kGqa7, "--pcc", "0"}, "--pcc must be in (0, 1]");
  expect_error({"synth", "--preset", "llama-70b", "--out", (dir / "x").string()},
               "unknown synth preset 'llama-70b'");
  // A shape far beyond any disk: refused before a byte is written.
  json huge = json::parse(test::slurp(fs::path(kGqa7) / "config.json"));
  huge["hidden_size"] = 65536;
  huge["intermediate_size"] = 262144;
  huge["num_attention_heads"] = 512;
  huge["num_key_value_heads"] = 512;
  huge["num_hidden_layers"] = 4096;
  std::ofstream(dir / "huge.json") << huge.dump();
  expect_error(
      {"synth", "--config", (dir / "huge.json").string(), "--out", (dir / "huge").string()},
      "not enough disk space");
  EXPECT_TRUE(!fs::exists(dir / "huge") || fs::is_empty(dir / "huge"));
  expect_error(
      {"eval", "--model", kGqa7, "--prompt-ids", "1 2 3 4 5 6 7 8 9 10", "--max-seq-len", "8"},
      "max_seq_len");
  expect_error({"eval", "--model", kGqa7, "--prompt-ids", "1 2 99999"}, "vocabulary");
  expect_error({"plan", "--model", kGqa7, "--device-memory", "12 parsecs"}, "--device-memory");
}

}  // namespace
}  // namespace bringup
