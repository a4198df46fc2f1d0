#include "eval/teacher_forcing.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

namespace bringup {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
}  // namespace

void EvalTotals::add(const CaseScore& c) {
  prompt_tokens += c.prompt_len;
  steps += c.steps;
  top1 += c.top1;
  top5 += c.top5;
  decode_steps += c.decode_steps;
  max_abs_logit_err = std::max(max_abs_logit_err, c.max_abs_logit_err);
  prefill_seconds += c.prefill_seconds;
  decode_seconds += c.decode_seconds;
}

std::vector<int32_t> top_k_ids(std::span<const float> logits, int k) {
  std::vector<int32_t> ids(logits.size());
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i);
  k = std::min<int>(k, static_cast<int>(ids.size()));
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  ids.resize(k);
  return ids;
}

std::string accuracy_line(const char* label, int64_t hits, int64_t total) {
  const double f = total ? static_cast<double>(hits) / static_cast<double>(total) : 0.0;
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s accuracy: %.2f%% (%.4f)", label, 100.0 * f, f);
  return buf;
}

CaseScore teacher_force(Model& model, const ReferenceCase& c, const EvalOptions& options,
                        const StepObserver& observer) {
  CaseScore s;
  s.name = c.name;
  s.prompt_len = static_cast<int64_t>(c.prompt_ids.size());
  auto seq = model.new_sequence();
  auto score = [&](std::span<const float> logits, size_t i) {
    const std::vector<int32_t> top = top_k_ids(logits, 5);
    s.top1 += top[0] == c.reference_ids[i];
    s.top5 += std::find(top.begin(), top.end(), c.reference_ids[i]) != top.end();
    for (int j = 0; j < 5; ++j) {
      const double err = std::fabs(double{logits[c.top5_ids[i][j]]} - c.top5_logits[i][j]);
      s.max_abs_logit_err = std::max(s.max_abs_logit_err, err);
    }
    ++s.steps;
    if (observer) observer(i, logits);
  };

  auto t0 = Clock::now();
  std::span<const float> logits;
  if (options.prefill_decode) {
    for (int32_t id : c.prompt_ids) logits = model.decode(*seq, id);
  } else {
    logits = model.prefill(*seq, c.prompt_ids);
  }
  s.prefill_seconds = since(t0);
  score(logits, 0);
  t0 = Clock::now();
  for (size_t i = 0; i + 1 < c.reference_ids.size(); ++i) {
    logits = model.decode(*seq, c.reference_ids[i]);
    score(logits, i + 1);
    ++s.decode_steps;
  }
  s.decode_seconds = since(t0);
  return s;
}

}  // namespace bringup
