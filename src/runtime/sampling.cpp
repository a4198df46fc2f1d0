#include "runtime/sampling.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "bringup/error.h"

namespace bringup {

SamplingParams SamplingParams::from(const GenerationConfig& g) {
  SamplingParams p;
  p.do_sample = g.do_sample;
  p.temperature = g.temperature;
  p.top_k = g.top_k;
  p.top_p = g.top_p;
  p.min_p = g.min_p;
  p.repetition_penalty = g.repetition_penalty;
  return p;
}

void apply_repetition_penalty(std::span<float> logits, std::span<const int32_t> seen,
                              double penalty) {
  if (penalty == 1.0) return;
  std::unordered_set<int32_t> done;
  for (int32_t id : seen) {
    if (id < 0 || static_cast<size_t>(id) >= logits.size() || !done.insert(id).second) continue;
    float& l = logits[id];
    l = l < 0 ? static_cast<float>(l * penalty) : static_cast<float>(l / penalty);
  }
}

void apply_frequency_penalties(std::span<float> logits, std::span<const int32_t> generated,
                               double frequency, double presence) {
  if (frequency == 0.0 && presence == 0.0) return;
  std::unordered_map<int32_t, int64_t> counts;
  for (int32_t id : generated) {
    if (id >= 0 && static_cast<size_t>(id) < logits.size()) ++counts[id];
  }
  for (const auto& [id, n] : counts) {
    logits[id] -= static_cast<float>(static_cast<double>(n) * frequency + presence);
  }
}

std::vector<Candidate> Sampler::candidates(std::span<const float> logits) const {
  const float inv_t = static_cast<float>(1.0 / (p_.temperature > 0 ? p_.temperature : 1.0));
  std::vector<Candidate> c(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) c[i] = {static_cast<int32_t>(i), logits[i] * inv_t};
  auto by_logit = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  // top-k keeps every token at least as large as the k-th largest (ties included).
  if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < c.size()) {
    std::nth_element(c.begin(), c.begin() + (p_.top_k - 1), c.end(), by_logit);
    const float kth = c[p_.top_k - 1].logit;
    c.erase(std::remove_if(c.begin(), c.end(), [&](const Candidate& x) { return x.logit < kth; }),
            c.end());
  }
  std::sort(c.begin(), c.end(), by_logit);
  auto softmax = [&](std::vector<double>& probs) {
    probs.resize(c.size());
    double sum = 0;
    for (size_t i = 0; i < c.size(); ++i)
      sum += probs[i] = std::exp(double{c[i].logit} - c[0].logit);
    for (double& p : probs) p /= sum;
  };
  std::vector<double> probs;
  // top-p: drop the tokens whose cumulative probability, counted from the least likely, stays
  // within 1 - top_p; the most likely always stays.
  if (p_.top_p < 1.0 && c.size() > 1) {
    softmax(probs);
    double cum = 0;
    size_t keep = c.size();
    for (size_t i = c.size(); i-- > 1;) {
      cum += probs[i];
      if (cum <= 1.0 - p_.top_p)
        keep = i;
      else
        break;
    }
    c.resize(keep);
  }
  // min-p: drop tokens less likely than min_p times the most likely one.
  if (p_.min_p > 0.0 && c.size() > 1) {
    softmax(probs);
    const double floor = p_.min_p * probs[0];
    size_t keep = 1;
    while (keep < c.size() && probs[keep] >= floor) ++keep;
    c.resize(keep);
  }
  return c;
}

int32_t Sampler::pick(std::span<const float> logits, std::span<const int32_t> seen,
                      std::span<const int32_t> generated) {
  std::span<const float> l = logits;
  if (p_.repetition_penalty != 1.0 || p_.frequency_penalty != 0.0 || p_.presence_penalty != 0.0) {
    scratch_.assign(logits.begin(), logits.end());
    apply_repetition_penalty(scratch_, seen, p_.repetition_penalty);
    apply_frequency_penalties(scratch_, generated, p_.frequency_penalty, p_.presence_penalty);
    l = scratch_;
  }
  if (p_.greedy()) {
    return static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin());
  }
  const std::vector<Candidate> c = candidates(l);
  std::vector<double> cdf(c.size());
  double sum = 0;
  for (size_t i = 0; i < c.size(); ++i) cdf[i] = sum += std::exp(double{c[i].logit} - c[0].logit);
  const double u = std::uniform_real_distribution<double>(0.0, sum)(rng_);
  const size_t i = std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin();
  return c[std::min(i, c.size() - 1)].id;
}

}  // namespace bringup
