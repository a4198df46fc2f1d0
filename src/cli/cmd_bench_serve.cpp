// bringup bench-serve: a fixed, seeded serving workload against a running `bringup serve` (or any
// OpenAI-compatible server) at several numbers of concurrent users, as vLLM's serving benchmark
// measures one: requests/s, aggregate output tokens/s, time to first token and time per output
// token (p50 / p99), the prefix-cache hit rate from /metrics, and the output rate as a share of
// this machine's bf16 compute limit measured in the same run. Then the time to first token of a
// request that repeats a 1000-token prefix against the first one that computed it.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <thread>

#include "cli/commands.h"
#include "cli/common.h"
#include "models/memory_plan.h"

namespace bringup::cli {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct BenchServeArgs {
  std::string url = "http://127.0.0.1:8080";
  std::vector<int64_t> users = {1, 4, 16, 32};
  int64_t requests = 0;  // per level; 0: 4 per user, at least 8
  int64_t prompt_min = 32, prompt_max = 192, output_min = 16, output_max = 48;
  int64_t shared_prefix = 160;  // words every other request starts with
  uint64_t seed = 1;
  std::string model;  // checkpoint directory, for the flops per token
  std::string api_key;
  int threads = 0;
  bool json_out = false;
};

struct Request {
  std::string prompt;
  int64_t max_tokens;
};

struct Result {
  bool ok = false;
  double ttft = 0, tpot = 0, e2e = 0;
  int64_t tokens = 0;
  std::string error;
};

const char* const kWords[] = {"the",  "king", "is",    "come", "to",   "court", "and",
                              "she",  "doth", "weep",  "for",  "love", "of",    "him",
                              "that", "was",  "slain", "in",   "war",  "my",    "lord",
                              "what", "news", "from",  "Rome", "good", "night"};

std::string words(std::mt19937_64& rng, int64_t n) {
  std::string s;
  for (int64_t i = 0; i < n; ++i) {
    if (i) s += ' ';
    s += kWords[rng() % std::size(kWords)];
  }
  return s;
}

std::vector<Request> workload(const BenchServeArgs& a, int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::mt19937_64 shared_rng(a.seed);
  const std::string shared = words(shared_rng, a.shared_prefix);
  std::vector<Request> out;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p =
        a.prompt_min + static_cast<int64_t>(rng() % (a.prompt_max - a.prompt_min + 1));
    const int64_t o =
        a.output_min + static_cast<int64_t>(rng() % (a.output_max - a.output_min + 1));
    std::string prompt = words(rng, p);
    if (i % 2 == 0 && a.shared_prefix > 0) prompt = shared + " " + prompt;
    out.push_back({prompt, o});
  }
  return out;
}

struct Target {
  std::string host;
  int port = 0;
};

Target parse_url(const std::string& url) {
  static const std::regex re(R"(^http://([^:/]+):(\d+)/?$)");
  std::smatch m;
  if (!std::regex_match(url, m, re)) {
    throw Error("--url '" + url + "' is not of the form http://HOST:PORT");
  }
  return {m[1], std::stoi(m[2])};
}

httplib::Client client(const Target& t, const std::string& key) {
  httplib::Client c(t.host, t.port);
  c.set_read_timeout(600, 0);
  c.set_connection_timeout(10, 0);
  if (!key.empty()) c.set_bearer_token_auth(key);
  return c;
}

// One streamed completion, timed from sending to the first text and to the end.
Result run_one(const Target& t, const std::string& key, const Request& r) {
  Result res;
  httplib::Client c = client(t, key);
  const json body = {{"prompt", r.prompt}, {"max_tokens", r.max_tokens},
                     {"temperature", 0},   {"ignore_eos", true},
                     {"stream", true},     {"stream_options", {{"include_usage", true}}}};
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  if (!key.empty()) req.set_header("Authorization", "Bearer " + key);
  std::string buffer;
  std::optional<Clock::time_point> first;
  const auto t0 = Clock::now();
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    buffer.append(data, n);
    size_t end;
    while ((end = buffer.find("\n\n")) != std::string::npos) {
      const std::string line = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      if (line.rfind("data: {", 0) != 0) continue;
      const json chunk = json::parse(line.substr(6), nullptr, false);
      if (chunk.is_discarded()) continue;
      if (chunk.contains("usage")) res.tokens = chunk["usage"]["completion_tokens"].get<int64_t>();
      if (!first && chunk.contains("choices") && !chunk["choices"].empty() &&
          !chunk["choices"][0]["text"].get<std::string>().empty()) {
        first = Clock::now();
      }
    }
    return true;
  };
  const auto r2 = c.send(req);
  const auto t1 = Clock::now();
  if (!r2 || r2->status != 200) {
    res.error = r2 ? "status " + std::to_string(r2->status) : "no answer";
    return res;
  }
  res.ok = res.tokens > 0;
  const double f = std::chrono::duration<double>((first ? *first : t1) - t0).count();
  res.ttft = f;
  res.e2e = std::chrono::duration<double>(t1 - t0).count();
  res.tpot = res.tokens > 1 ? (res.e2e - f) / static_cast<double>(res.tokens - 1) : 0.0;
  return res;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

// prefix_cache hits and queries from /metrics.
std::pair<double, double> prefix_counters(const Target& t, const std::string& key) {
  httplib::Client c = client(t, key);
  const auto r = c.Get("/metrics");
  if (!r || r->status != 200) return {0, 0};
  auto value = [&](const std::string& name) {
    const size_t at = r->body.find("\n" + name + " ");
    return at == std::string::npos ? 0.0 : std::stod(r->body.substr(at + name.size() + 2));
  };
  return {value("bringup:prefix_cache_hits_total"), value("bringup:prefix_cache_queries_total")};
}

struct Level {
  int64_t users = 0, requests = 0, failed = 0;
  double seconds = 0, req_s = 0, tok_s = 0;
  double ttft50 = 0, ttft99 = 0, tpot50 = 0, tpot99 = 0, hit_rate = 0;
};

Level run_level(const BenchServeArgs& a, const Target& t, int64_t users) {
  const int64_t n = a.requests > 0 ? a.requests : std::max<int64_t>(8, 4 * users);
  const std::vector<Request> work = workload(a, n, a.seed * 1000 + static_cast<uint64_t>(users));
  std::vector<Result> results(work.size());
  const auto [hits0, queries0] = prefix_counters(t, a.api_key);
  std::atomic<size_t> next{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int64_t u = 0; u < users; ++u) {
    threads.emplace_back([&] {
      for (size_t i; (i = next++) < work.size();) results[i] = run_one(t, a.api_key, work[i]);
    });
  }
  for (auto& th : threads) th.join();
  Level l;
  l.users = users;
  l.requests = n;
  l.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const auto [hits1, queries1] = prefix_counters(t, a.api_key);
  std::vector<double> ttft, tpot;
  int64_t tokens = 0;
  for (const Result& r : results) {
    if (!r.ok) {
      ++l.failed;
      continue;
    }
    ttft.push_back(r.ttft);
    tpot.push_back(r.tpot);
    tokens += r.tokens;
  }
  l.req_s = static_cast<double>(n - l.failed) / l.seconds;
  l.tok_s = static_cast<double>(tokens) / l.seconds;
  l.ttft50 = percentile(ttft, 0.5);
  l.ttft99 = percentile(ttft, 0.99);
  l.tpot50 = percentile(tpot, 0.5);
  l.tpot99 = percentile(tpot, 0.99);
  l.hit_rate = queries1 > queries0 ? (hits1 - hits0) / (queries1 - queries0) : 0.0;
  return l;
}

int run_bench_serve(const BenchServeArgs& a) {
  const Target t = parse_url(a.url);
  if (a.users.empty()) throw Error("bench-serve: --users needs at least one count");
  for (int64_t u : a.users) {
    if (u < 1 || u > 256) throw Error("bench-serve: --users counts must be in 1..256");
  }
  if (a.prompt_min < 1 || a.prompt_max < a.prompt_min || a.output_min < 1 ||
      a.output_max < a.output_min) {
    throw Error("bench-serve: prompt and output lengths must be positive ranges (min <= max)");
  }
  httplib::Client c = client(t, a.api_key);
  const auto models = c.Get("/v1/models");
  if (!models || models->status != 200) {
    throw Error("bench-serve: no OpenAI-compatible server answers at " + a.url + "/v1/models");
  }
  const json card = json::parse(models->body)["data"][0];
  const Limits limits = probe_limits(a.threads, size_t{1} << 28);
  double flops_per_token = 0;  // the matrices every generated token multiplies
  if (!a.model.empty()) {
    const ModelConfig cfg = load_checkpoint_config(a.model);
    const std::shared_ptr<Device> dev = make_cpu_device(1);
    ModelOptions o;
    o.kv_budget_tokens = 1;
    o.max_seq_len = 1;
    flops_per_token =
        2.0 * static_cast<double>(plan_memory(cfg, o, *dev, 0).parameters -
                                  static_cast<size_t>(cfg.vocab_size * cfg.hidden_size));
  }

  std::vector<Level> levels;
  for (int64_t u : a.users) levels.push_back(run_level(a, t, u));

  // Time to first token with a 1000-word shared prefix: computed, then found in the cache.
  double cold = 0, warm = 0;
  const int64_t context = card.value("max_model_len", int64_t{0});
  if (context >= 1600) {
    std::mt19937_64 rng(a.seed + 99);
    const std::string prefix = words(rng, 1000);
    cold = run_one(t, a.api_key, {prefix + " " + words(rng, 8), 4}).ttft;
    warm = run_one(t, a.api_key, {prefix + " " + words(rng, 8), 4}).ttft;
  }

  const double single = levels.front().users == 1 ? levels.front().tok_s : 0;
  if (a.json_out) {
    json out = {{"url", a.url},
                {"model", card.value("id", "")},
                {"compute_gflop_s", limits.compute.best},
                {"flops_per_token", flops_per_token},
                {"prefix_ttft_cold_s", cold},
                {"prefix_ttft_warm_s", warm}};
    for (const Level& l : levels) {
      out["levels"].push_back({{"users", l.users},
                               {"requests", l.requests},
                               {"failed", l.failed},
                               {"seconds", l.seconds},
                               {"req_s", l.req_s},
                               {"out_tok_s", l.tok_s},
                               {"ttft_p50_s", l.ttft50},
                               {"ttft_p99_s", l.ttft99},
                               {"tpot_p50_s", l.tpot50},
                               {"tpot_p99_s", l.tpot99},
                               {"prefix_hit_rate", l.hit_rate},
                               {"x_one_user", single > 0 ? l.tok_s / single : 0.0}});
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf(
      "bench-serve %s (model %s): prompts %lld-%lld words (every other behind a %lld-word "
      "shared prefix), outputs %lld-%lld tokens, temperature 0, seed %llu\n",
      a.url.c_str(), card.value("id", "?").c_str(), static_cast<long long>(a.prompt_min),
      static_cast<long long>(a.prompt_max), static_cast<long long>(a.shared_prefix),
      static_cast<long long>(a.output_min), static_cast<long long>(a.output_max),
      static_cast<unsigned long long>(a.seed));
  std::printf(
      "| users | requests | failed | req/s | out tok/s | x 1 user | TTFT p50 ms | TTFT p99 ms "
      "| TPOT p50 ms | TPOT p99 ms | prefix hits | %% of compute |\n");
  std::printf(
      "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const Level& l : levels) {
    const double share =
        flops_per_token > 0 ? 100.0 * l.tok_s * flops_per_token / (limits.compute.best * 1e9) : 0;
    std::printf(
        "| %lld | %lld | %lld | %.2f | %.2f | %.2f | %.0f | %.0f | %.1f | %.1f | %.0f%% | %.1f |\n",
        static_cast<long long>(l.users), static_cast<long long>(l.requests),
        static_cast<long long>(l.failed), l.req_s, l.tok_s, single > 0 ? l.tok_s / single : 0.0,
        l.ttft50 * 1e3, l.ttft99 * 1e3, l.tpot50 * 1e3, l.tpot99 * 1e3, 100.0 * l.hit_rate, share);
  }
  std::printf("machine, measured in this run: bf16 multiply %.0f GFLOP/s (best of 5)%s\n",
              limits.compute.best,
              flops_per_token > 0 ? "" : "; give --model DIR for the share of it");
  if (cold > 0) {
    std::printf(
        "time to first token behind a 1000-word prefix: %.0f ms computed, %.0f ms from the "
        "prefix cache (%.1fx shorter)\n",
        cold * 1e3, warm * 1e3, warm > 0 ? cold / warm : 0.0);
  }
  for (const Level& l : levels) {
    if (l.failed) return 1;
  }
  return 0;
}

}  // namespace

std::function<int()> add_bench_serve(CLI::App& app) {
  auto args = std::make_shared<BenchServeArgs>();
  CLI::App* sub = app.add_subcommand(
      "bench-serve", "Serving benchmark against a running server (users, TTFT, TPOT, prefix hits)");
  sub->add_option("--url", args->url, "server address http://HOST:PORT")->capture_default_str();
  sub->add_option("--users", args->users, "concurrent users per level")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--requests", args->requests, "requests per level (default 4 per user, >= 8)");
  sub->add_option("--prompt-min", args->prompt_min, "shortest prompt in words")
      ->capture_default_str();
  sub->add_option("--prompt-max", args->prompt_max, "longest prompt in words")
      ->capture_default_str();
  sub->add_option("--output-min", args->output_min, "fewest output tokens")->capture_default_str();
  sub->add_option("--output-max", args->output_max, "most output tokens")->capture_default_str();
  sub->add_option("--shared-prefix", args->shared_prefix,
                  "words of the prefix every other request shares (0: none)")
      ->capture_default_str();
  sub->add_option("--seed", args->seed, "workload seed")->capture_default_str();
  sub->add_option("--model", args->model, "the served checkpoint's directory (flops per token)");
  sub->add_option("--api-key", args->api_key, "bearer token for the server");
  sub->add_option("--threads", args->threads, "threads of the compute probe (default: all)");
  sub->add_flag("--json", args->json_out, "one JSON object instead of the table");
  return [args] { return run_bench_serve(*args); };
}

}  // namespace bringup::cli
