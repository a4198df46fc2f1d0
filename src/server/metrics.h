// The server's Prometheus metrics, named as vLLM names them under a `bringup:` prefix (request
// routers such as llm-d and the Gateway API inference extension read these to balance replicas):
// requests running and waiting, KV-cache usage, token totals, and histograms of time to first
// token, time per output token and end-to-end latency. Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "bringup/model.h"
#include "runtime/scheduler.h"

namespace bringup::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds)
      : bounds_(std::move(bounds)), counts_(bounds_.size()) {}
  void observe(double v);
  std::string render(const std::string& name, const std::string& help) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bound: observations <= it (cumulative when rendered)
  uint64_t count_ = 0;
  double sum_ = 0;
};

class Metrics {
 public:
  Metrics();
  // The engine's state after a step.
  void engine(const SchedulerStats& s, const KvPoolStats& pool);
  // A request answered in full: its tokens, time to first token and end-to-end seconds.
  void request_done(int64_t prompt_tokens, int64_t generated, double ttft, double e2e);
  std::string render() const;

 private:
  mutable std::mutex mu_;
  SchedulerStats engine_;
  KvPoolStats pool_;
  double kv_usage_ = 0;
  uint64_t success_ = 0;
  Histogram ttft_, tpot_, e2e_;
};

}  // namespace bringup::server
