#include "server/metrics.h"

#include <cstdio>

namespace bringup::server {

namespace {

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string metric(const std::string& name, const char* type, const std::string& help,
                   double value) {
  return "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
         number(value) + "\n";
}

}  // namespace

void Histogram::observe(double v) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (v <= bounds_[i]) {
      ++counts_[i];
      break;
    }
  }
  ++count_;
  sum_ += v;
}

std::string Histogram::render(const std::string& name, const std::string& help) const {
  std::string out = "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += name + "_bucket{le=\"" + number(bounds_[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  out += name + "_sum " + number(sum_) + "\n" + name + "_count " + std::to_string(count_) + "\n";
  return out;
}

Metrics::Metrics()
    : ttft_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
             10.0, 20.0, 40.0, 80.0}),
      tpot_({0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0}),
      e2e_({0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
            240.0, 480.0}) {}

void Metrics::engine(const SchedulerStats& s, const KvPoolStats& pool) {
  std::lock_guard<std::mutex> lock(mu_);
  engine_ = s;
  pool_ = pool;
  kv_usage_ = pool.total_blocks > 0 ? static_cast<double>(pool.total_blocks - pool.free_blocks) /
                                          static_cast<double>(pool.total_blocks)
                                    : 0.0;
}

void Metrics::request_done(int64_t, int64_t generated, double ttft, double e2e) {
  std::lock_guard<std::mutex> lock(mu_);
  ++success_;
  ttft_.observe(ttft);
  e2e_.observe(e2e);
  if (generated > 1) tpot_.observe((e2e - ttft) / static_cast<double>(generated - 1));
}

std::string Metrics::render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out += metric("bringup:num_requests_running", "gauge", "Requests generating in the engine.",
                static_cast<double>(engine_.running));
  out += metric("bringup:num_requests_waiting", "gauge", "Requests waiting for KV room.",
                static_cast<double>(engine_.waiting));
  out += metric("bringup:kv_cache_usage_perc", "gauge",
                "Fraction of the KV pool's blocks in use (1 = full).", kv_usage_);
  out += metric("bringup:prompt_tokens_total", "counter", "Prompt tokens prefilled.",
                static_cast<double>(engine_.prompt_tokens));
  out += metric("bringup:generation_tokens_total", "counter", "Tokens generated.",
                static_cast<double>(engine_.generated_tokens));
  out += metric("bringup:prefix_cache_queries_total", "counter",
                "Prompt tokens looked up in the prefix cache.",
                static_cast<double>(pool_.prefix_queries));
  out += metric("bringup:prefix_cache_hits_total", "counter",
                "Prompt tokens found in the prefix cache.", static_cast<double>(pool_.prefix_hits));
  out += metric("bringup:num_preemptions_total", "counter",
                "Requests preempted for KV room (computed again when readmitted).",
                static_cast<double>(engine_.preemptions));
  out += metric("bringup:request_success_total", "counter", "Requests answered in full.",
                static_cast<double>(success_));
  out += ttft_.render("bringup:time_to_first_token_seconds", "Time to first token.");
  out += tpot_.render("bringup:time_per_output_token_seconds", "Time per output token.");
  out += e2e_.render("bringup:e2e_request_latency_seconds", "End-to-end request latency.");
  return out;
}

}  // namespace bringup::server
