// The serving scheduler: requests arriving while others run, n choices forked from one prompt,
// cancellation, log-probabilities and the per-step prompt budget. Greedy outputs equal
// generating each prompt alone (the engine is batch-invariant), whatever else is in flight.
#include "runtime/scheduler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "../unit/test_util.h"
#include "bringup/error.h"
#include "model_test_util.h"
#include "runtime/generate.h"

namespace bringup {
namespace {

struct Fixture {
  Checkpoint ck = Checkpoint::open(test::golden("qwen2-tied-hd64"));
  std::shared_ptr<Device> dev = make_cpu_device(2);
  std::unique_ptr<Model> model;
  explicit Fixture(int64_t budget = 2048, int64_t step_rows = 64) {
    ModelOptions o;
    o.precision = Precision::kBfp8Mixed;
    o.max_seq_len = 256;
    o.kv_budget_tokens = budget;
    o.kv_block_size = 16;
    o.prefill_chunk = step_rows;
    model = build_model(ck, *dev, o);
  }
};

std::vector<int32_t> prompt_of(int seed, int64_t length, int64_t vocab) {
  std::vector<int32_t> ids(static_cast<size_t>(length));
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = static_cast<int32_t>((i * 7919 + static_cast<size_t>(seed) * 104729 + 5) % vocab);
  }
  return ids;
}

GenerationRequest request(std::vector<int32_t> prompt, int64_t max_new, int n = 1) {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.settings.max_new_tokens = max_new;
  r.n = n;
  return r;
}

// The greedy ids of one prompt generated alone.
std::vector<int32_t> alone(Model& model, const std::vector<int32_t>& prompt, int64_t max_new) {
  auto seq = model.new_sequence();
  GenerateOptions o;
  o.max_new_tokens = max_new;
  return generate(model, *seq, prompt, o, nullptr);
}

TEST(Scheduler, RequestsArrivingMidRunGetTheirAloneTokens) {
  Fixture f;
  Model& m = *f.model;
  const int64_t vocab = m.config().vocab_size;
  Scheduler s(m, nullptr);
  std::map<int, std::vector<int32_t>> got;
  std::map<int, int> finished;
  auto submit = [&](int k) {
    s.submit(request(prompt_of(k, 5 + 13 * k, vocab), 6 + k), [&, k](const GenerationEvent& e) {
      got[k].push_back(e.token);
      if (e.finished) ++finished[k];
    });
  };
  submit(0);
  submit(1);
  for (int k = 2; k < 6; ++k) {  // one more arrives after each step
    ASSERT_TRUE(s.step());
    submit(k);
  }
  while (s.step()) {
  }
  EXPECT_TRUE(s.idle());
  for (int k = 0; k < 6; ++k) {
    EXPECT_EQ(got[k], alone(m, prompt_of(k, 5 + 13 * k, vocab), 6 + k)) << k;
    EXPECT_EQ(finished[k], 1) << k;
  }
  EXPECT_EQ(m.kv_pool().free_blocks, m.kv_pool().total_blocks);
  EXPECT_EQ(s.stats().preemptions, 0);  // the pool had room for all
}

// Requests admitted by their prompts outgrow a small pool: the latest is preempted and computed
// again later, and every request still gets exactly what it gets alone (greedy ids, and sampled
// choices drawing with their seeds), with or without prefix caching.
TEST(Scheduler, PreemptedRequestsFinishAsIfAlone) {
  for (bool cache : {true, false}) {
    SCOPED_TRACE(cache ? "prefix cache" : "no prefix cache");
    Fixture f(160);  // 10 blocks of 16 positions
    Model& m = *f.model;
    const int64_t vocab = m.config().vocab_size;
    SchedulerOptions o;
    o.prefix_cache = cache;
    Scheduler s(m, nullptr, o);
    std::map<int, std::map<int, std::vector<int32_t>>> got;
    std::map<int, int> finished;
    std::vector<GenerationRequest> sent;
    for (int k = 0; k < 5; ++k) {
      GenerationRequest r = request(prompt_of(k, 3 + 2 * k, vocab), 56, k == 3 ? 2 : 1);
      if (k >= 3) {
        r.settings.sampling.do_sample = true;
        r.settings.sampling.temperature = 1.3;
        r.settings.sampling.seed = 7 + static_cast<uint64_t>(k);
      }
      sent.push_back(r);
      s.submit(r, [&, k](const GenerationEvent& e) {
        got[k][e.choice].push_back(e.token);
        if (e.finished) ++finished[k];
      });
    }
    while (s.step()) {
      EXPECT_LE(s.stats().running, 5);
    }
    EXPECT_GT(s.stats().preemptions, 0);
    EXPECT_EQ(m.kv_pool().free_blocks, m.kv_pool().total_blocks);
    for (int k = 0; k < 5; ++k) {
      Fixture big;
      Scheduler alone_s(*big.model, nullptr);
      std::map<int, std::vector<int32_t>> want;
      alone_s.submit(sent[static_cast<size_t>(k)],
                     [&](const GenerationEvent& e) { want[e.choice].push_back(e.token); });
      while (alone_s.step()) {
      }
      EXPECT_EQ(got[k], want) << k;
      EXPECT_EQ(finished[k], sent[static_cast<size_t>(k)].n) << k;
    }
  }
}

// n choices fork from the prompt's blocks: under greedy sampling they all equal the prompt alone;
// with sampling, choice i draws with seed + i.
TEST(Scheduler, ChoicesForkFromOnePrompt) {
  Fixture f;
  Model& m = *f.model;
  const std::vector<int32_t> prompt = prompt_of(3, 40, m.config().vocab_size);
  Scheduler s(m, nullptr);
  std::map<int, std::vector<int32_t>> got;
  s.submit(request(prompt, 8, 3),
           [&](const GenerationEvent& e) { got[e.choice].push_back(e.token); });
  ASSERT_TRUE(s.step());  // the prompt: one sequence, then forks sharing its full blocks
  EXPECT_EQ(m.kv_pool().total_blocks - m.kv_pool().free_blocks, 3);
  while (s.step()) {
  }
  ASSERT_EQ(got.size(), 3u);
  const std::vector<int32_t> want = alone(m, prompt, 8);
  for (int c = 0; c < 3; ++c) EXPECT_EQ(got[c], want) << c;

  GenerationRequest sampled = request(prompt, 12, 2);
  sampled.settings.sampling.do_sample = true;
  sampled.settings.sampling.temperature = 1.5;
  sampled.settings.sampling.seed = 41;
  std::map<int, std::vector<int32_t>> two;
  s.submit(sampled, [&](const GenerationEvent& e) { two[e.choice].push_back(e.token); });
  while (s.step()) {
  }
  GenerationRequest second = sampled;
  second.n = 1;
  second.settings.sampling.seed = 42;
  std::vector<int32_t> seed42;
  s.submit(second, [&](const GenerationEvent& e) { seed42.push_back(e.token); });
  while (s.step()) {
  }
  EXPECT_EQ(two[1], seed42);
  EXPECT_NE(two[0], two[1]);
}

TEST(Scheduler, CancelReturnsTheBlocksAndStopsEvents) {
  Fixture f;
  Model& m = *f.model;
  Scheduler s(m, nullptr);
  int events = 0;
  const uint64_t id = s.submit(request(prompt_of(1, 100, m.config().vocab_size), 50, 2),
                               [&](const GenerationEvent&) { ++events; });
  std::vector<int32_t> other;
  s.submit(request(prompt_of(2, 10, m.config().vocab_size), 4),
           [&](const GenerationEvent& e) { other.push_back(e.token); });
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(s.step());
  const int before = events;
  EXPECT_GT(before, 0);
  s.cancel(id);
  while (s.step()) {
  }
  EXPECT_EQ(events, before);
  EXPECT_EQ(other, alone(m, prompt_of(2, 10, m.config().vocab_size), 4));
  EXPECT_EQ(m.kv_pool().free_blocks, m.kv_pool().total_blocks);
  EXPECT_TRUE(s.idle());
}

// With a prompt budget per step, a running request decodes in every step while a long prompt is
// taken a few tokens at a time.
TEST(Scheduler, LongPromptsDoNotStallRunningRequests) {
  Fixture f;
  Model& m = *f.model;
  SchedulerOptions o;
  o.prompt_tokens_per_step = 8;
  Scheduler s(m, nullptr, o);
  std::vector<int32_t> fast;
  s.submit(request(prompt_of(4, 6, m.config().vocab_size), 12),
           [&](const GenerationEvent& e) { fast.push_back(e.token); });
  ASSERT_TRUE(s.step());  // its prompt
  ASSERT_EQ(fast.size(), 1u);
  int long_events = 0;
  s.submit(request(prompt_of(5, 80, m.config().vocab_size), 2),
           [&](const GenerationEvent&) { ++long_events; });
  for (int i = 0; i < 9; ++i) {
    ASSERT_TRUE(s.step());
    EXPECT_EQ(fast.size(), static_cast<size_t>(i + 2)) << "step " << i;
  }
  EXPECT_EQ(long_events, 0);  // 80 prompt tokens at 8 a step take 10 steps
  ASSERT_TRUE(s.step());
  EXPECT_EQ(long_events, 1);
}

TEST(Scheduler, LogProbsAreTheLogSoftmaxOfTheLogits) {
  Fixture f;
  Model& m = *f.model;
  const std::vector<int32_t> prompt = prompt_of(6, 12, m.config().vocab_size);
  GenerationRequest r = request(prompt, 1);
  r.top_logprobs = 3;
  Scheduler s(m, nullptr);
  GenerationEvent got;
  s.submit(r, [&](const GenerationEvent& e) { got = e; });
  while (s.step()) {
  }
  auto seq = m.new_sequence();
  const std::span<const float> logits = m.prefill(*seq, prompt);
  double sum = 0;
  const float max = *std::max_element(logits.begin(), logits.end());
  for (float l : logits) sum += std::exp(double{l} - max);
  const double lse = max + std::log(sum);
  ASSERT_EQ(got.top.size(), 3u);
  EXPECT_EQ(got.top[0].first, got.token);  // greedy: the likeliest
  EXPECT_NEAR(got.logprob, logits[got.token] - lse, 1e-5);
  EXPECT_GE(got.top[0].second, got.top[1].second);
  EXPECT_GE(got.top[1].second, got.top[2].second);
  EXPECT_NEAR(got.top[2].second, logits[got.top[2].first] - lse, 1e-5);
}

TEST(Scheduler, BadRequestsAreRefusedByName) {
  Fixture f(64);
  Model& m = *f.model;
  Scheduler s(m, nullptr);
  auto message = [&](GenerationRequest r) {
    try {
      s.submit(std::move(r), nullptr);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(message(request({}, 4)), "the prompt is empty");
  EXPECT_EQ(message(request({1, 2}, 0)), "max_new_tokens must be at least 1");
  EXPECT_EQ(message(request({1, 2}, 4, 0)), "n must be in 1..64, not 0");
  EXPECT_NE(message(request({1, 99999}, 4)).find("prompt token id 99999 is outside"),
            std::string::npos);
  EXPECT_NE(message(request({1, 2}, 300)).find("exceeds max_seq_len"), std::string::npos);
  EXPECT_NE(message(request(prompt_of(1, 40, 2048), 40)).find("whole kv budget of 64 tokens"),
            std::string::npos);
  EXPECT_TRUE(s.idle());
}

}  // namespace
}  // namespace bringup
