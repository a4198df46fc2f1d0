// Sampling as transformers' generate samples: processors on hand-built logits, determinism, and
// frequencies that follow the softmax.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "runtime/sampling.h"

namespace bringup {
namespace {

std::set<int32_t> kept(const SamplingParams& p, const std::vector<float>& logits) {
  std::set<int32_t> ids;
  for (const Candidate& c : Sampler(p).candidates(logits)) ids.insert(c.id);
  return ids;
}

SamplingParams sampling() {
  SamplingParams p;
  p.do_sample = true;
  return p;
}

std::vector<float> log_probs(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

TEST(Sampling, TopKKeepsTiesAtTheKth) {
  SamplingParams p = sampling();
  p.top_k = 2;
  EXPECT_EQ(kept(p, {1, 5, 3, 5, 2}), (std::set<int32_t>{1, 3}));
  p.top_k = 3;
  EXPECT_EQ(kept(p, {1, 5, 3, 5, 2}), (std::set<int32_t>{1, 2, 3}));
  p.top_k = 4;
  EXPECT_EQ(kept(p, {1, 5, 3, 3, 2}), (std::set<int32_t>{1, 2, 3, 4}));
  p.top_k = 0;
  EXPECT_EQ(kept(p, {1, 5, 3, 5, 2}).size(), 5u);
}

TEST(Sampling, TopPDropsTheUnlikelyTail) {
  SamplingParams p = sampling();
  const auto logits = log_probs({0.15, 0.5, 0.05, 0.3});
  p.top_p = 0.75;  // the tail 0.05 + 0.15 = 0.2 <= 0.25 goes
  EXPECT_EQ(kept(p, logits), (std::set<int32_t>{1, 3}));
  p.top_p = 0.9;  // only 0.05 <= 0.1 goes
  EXPECT_EQ(kept(p, logits), (std::set<int32_t>{0, 1, 3}));
  p.top_p = 0.01;  // the most likely always stays
  EXPECT_EQ(kept(p, logits), (std::set<int32_t>{1}));
}

TEST(Sampling, MinPScalesWithTheTopProbability) {
  SamplingParams p = sampling();
  const auto logits = log_probs({0.15, 0.5, 0.05, 0.3});
  p.min_p = 0.2;  // floor 0.1
  EXPECT_EQ(kept(p, logits), (std::set<int32_t>{0, 1, 3}));
  p.min_p = 0.7;  // floor 0.35
  EXPECT_EQ(kept(p, logits), (std::set<int32_t>{1}));
}

TEST(Sampling, TemperatureComesBeforeTheFilters) {
  SamplingParams p = sampling();
  p.temperature = 0.5;  // sharpens: probs become 0.25^2 : 0.75^2 = 0.1 : 0.9
  p.top_p = 0.85;
  EXPECT_EQ(kept(p, log_probs({0.25, 0.75})), (std::set<int32_t>{1}));
  p.temperature = 1.0;
  EXPECT_EQ(kept(p, log_probs({0.25, 0.75})), (std::set<int32_t>{0, 1}));
}

TEST(Sampling, RepetitionPenaltyAsTransformers) {
  std::vector<float> logits = {2.0f, -2.0f, 1.0f, 3.0f};
  const std::vector<int32_t> seen = {0, 1, 1, 0};  // each id once, however often seen
  apply_repetition_penalty(logits, seen, 2.0);
  EXPECT_EQ(logits, (std::vector<float>{1.0f, -4.0f, 1.0f, 3.0f}));
}

// OpenAI's penalties count the reply's ids: frequency per occurrence, presence once.
TEST(Sampling, FrequencyAndPresencePenaltiesAsOpenAI) {
  std::vector<float> logits = {2.0f, -2.0f, 1.0f, 3.0f};
  const std::vector<int32_t> generated = {3, 1, 3, 3};
  apply_frequency_penalties(logits, generated, 0.5, 0.25);
  EXPECT_EQ(logits, (std::vector<float>{2.0f, -2.75f, 1.0f, 1.25f}));
  // A greedy pick sees them: id 3 (3.0) loses to id 0 once it was generated twice.
  SamplingParams p;
  p.frequency_penalty = 0.6;
  Sampler s(p);
  const std::vector<float> raw = {2.0f, -2.0f, 1.0f, 3.0f};
  const std::vector<int32_t> twice = {3, 3};
  EXPECT_EQ(s.pick(raw, twice, twice), 0);
  EXPECT_EQ(s.pick(raw, twice, {}), 3);  // the prompt alone is not penalised
}

TEST(Sampling, GreedyWhenOffOrTemperatureZero) {
  const std::vector<float> logits = {0.1f, 2.0f, 1.9f};
  SamplingParams p = sampling();
  p.temperature = 0.0;
  Sampler s(p);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(s.pick(logits, {}), 1);
  p = SamplingParams{};  // do_sample false
  Sampler g(p);
  EXPECT_EQ(g.pick(logits, {}), 1);
  // The penalty still applies to greedy picks, as in transformers.
  p.repetition_penalty = 2.0;
  Sampler r(p);
  const std::vector<int32_t> seen = {1};
  EXPECT_EQ(r.pick(logits, seen), 2);
}

TEST(Sampling, FixedSeedRepeats) {
  const std::vector<float> logits = {0.0f, 0.5f, 1.0f, 0.2f, -0.3f};
  SamplingParams p = sampling();
  p.seed = 42;
  Sampler a(p), b(p);
  std::vector<int32_t> ra, rb;
  for (int i = 0; i < 100; ++i) {
    ra.push_back(a.pick(logits, {}));
    rb.push_back(b.pick(logits, {}));
  }
  EXPECT_EQ(ra, rb);
  p.seed = 43;
  Sampler c(p);
  std::vector<int32_t> rc;
  for (int i = 0; i < 100; ++i) rc.push_back(c.pick(logits, {}));
  EXPECT_NE(ra, rc);
}

TEST(Sampling, FrequenciesFollowTheSoftmax) {
  const std::vector<float> logits = {0.0f, 0.5f, 1.0f, 0.2f, -0.3f};
  SamplingParams p = sampling();
  p.temperature = 0.7;
  p.seed = 7;
  Sampler s(p);
  const int n = 200000;
  std::vector<int> counts(logits.size());
  for (int i = 0; i < n; ++i) ++counts[s.pick(logits, {})];
  double z = 0;
  for (float l : logits) z += std::exp(l / 0.7);
  double chi2 = 0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const double expect = n * std::exp(logits[i] / 0.7) / z;
    chi2 += (counts[i] - expect) * (counts[i] - expect) / expect;
    EXPECT_NEAR(counts[i], expect, 5 * std::sqrt(expect)) << "token " << i;
  }
  EXPECT_LT(chi2, 20.5);  // 4 degrees of freedom: p < 0.0004 of failing by chance
}

}  // namespace
}  // namespace bringup

#include "runtime/stop_strings.h"

namespace bringup {
namespace {

TEST(StopStrings, HoldsBackPossibleStartsAndStopsBeforeTheMatch) {
  StopStrings s({"\n\nUser:", "END"});
  EXPECT_EQ(s.push("Hello"), "Hello");
  EXPECT_EQ(s.push(" world\n"), " world");  // "\n" may begin "\n\nUser:"
  EXPECT_EQ(s.push("\nUs"), "");
  EXPECT_EQ(s.push("ually"), "\n\nUsually");  // not a stop after all
  EXPECT_FALSE(s.stopped());
  EXPECT_EQ(s.push(" E"), " ");
  EXPECT_EQ(s.push("NDless"), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.push("more"), "");
  StopStrings t({"stop"});
  EXPECT_EQ(t.push("no st"), "no ");
  EXPECT_EQ(t.flush(), "st");
}

}  // namespace
}  // namespace bringup
