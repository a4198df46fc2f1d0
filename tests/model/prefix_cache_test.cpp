// Prefix caching in the KV pool: full blocks offered by a sequence outlive it, a later sequence
// with the same leading tokens starts from them and gets bit-identical logits, a different token
// anywhere before a block keeps it from matching, least recently used blocks give way when the
// pool needs room, and a rewritten block leaves the cache.
#include <gtest/gtest.h>

#include <cstring>

#include "../unit/test_util.h"
#include "bringup/error.h"
#include "model_test_util.h"
#include "runtime/scheduler.h"

namespace bringup {
namespace {

constexpr int64_t kBlock = 16;

std::unique_ptr<Model> small_model(Device& dev, const Checkpoint& ck, int64_t budget) {
  ModelOptions o;
  o.precision = Precision::kBfp8Mixed;
  o.max_seq_len = 256;
  o.kv_budget_tokens = budget;
  o.kv_block_size = static_cast<int>(kBlock);
  return build_model(ck, dev, o);
}

std::vector<int32_t> ids(int64_t n, int seed) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int32_t>((i * 7919 + seed * 131) % 2000);
  return v;
}

// Logits of the last position of `tokens` in a fresh sequence, computed in full.
std::vector<float> fresh(Model& m, std::span<const int32_t> tokens) {
  auto seq = m.new_sequence();
  const std::span<const float> l = m.prefill(*seq, tokens);
  return {l.begin(), l.end()};
}

// Prefills what seq does not hold yet of `tokens`: the last logits must be bit-identical to
// computing every position afresh.
void expect_as_fresh(Model& m, Sequence& seq, std::span<const int32_t> tokens) {
  const std::vector<float> want = fresh(m, tokens);
  const std::span<const float> got = m.prefill(seq, tokens.subspan(seq.length()));
  ASSERT_EQ(got.size(), want.size());
  EXPECT_EQ(0, std::memcmp(got.data(), want.data(), want.size() * 4));
}

TEST(PrefixCache, ReusedBlocksGiveBitIdenticalLogits) {
  const Checkpoint ck = Checkpoint::open(test::golden("qwen2-tied-hd64"));
  auto dev = make_cpu_device(2);
  auto m = small_model(*dev, ck, 1024);
  const std::vector<int32_t> first = ids(100, 1);
  {
    auto seq = m->new_sequence();
    m->prefill(*seq, first);
    m->cache_prefix(*seq, first);
  }  // the sequence ends; its 6 full blocks stay cached
  EXPECT_EQ(m->kv_pool().cached_blocks, 6);
  EXPECT_EQ(m->kv_pool().free_blocks, m->kv_pool().total_blocks);

  std::vector<int32_t> second = first;
  const std::vector<int32_t> more = ids(30, 2);
  second.insert(second.end(), more.begin(), more.end());
  auto seq = m->new_sequence();
  EXPECT_EQ(m->reuse_prefix(*seq, second), 96);  // 6 whole blocks
  EXPECT_EQ(seq->length(), 96);
  expect_as_fresh(*m, *seq, second);
  EXPECT_EQ(m->kv_pool().prefix_hits, 96);

  // The whole prompt cached still leaves its last token to compute.
  auto again = m->new_sequence();
  EXPECT_EQ(m->reuse_prefix(*again, std::span(first).first(96)), 80);
}

TEST(PrefixCache, ADifferentEarlierTokenStopsTheMatch) {
  const Checkpoint ck = Checkpoint::open(test::golden("qwen2-tied-hd64"));
  auto dev = make_cpu_device(2);
  auto m = small_model(*dev, ck, 1024);
  const std::vector<int32_t> a = ids(80, 3);
  {
    auto seq = m->new_sequence();
    m->prefill(*seq, a);
    m->cache_prefix(*seq, a);
  }
  std::vector<int32_t> b = a;
  b[20] = (b[20] + 1) % 2000;  // in the second block: the first still matches, nothing after
  auto seq = m->new_sequence();
  EXPECT_EQ(m->reuse_prefix(*seq, b), 16);
  expect_as_fresh(*m, *seq, b);
}

TEST(PrefixCache, CachedBlocksGiveWayWhenThePoolNeedsRoom) {
  const Checkpoint ck = Checkpoint::open(test::golden("qwen2-tied-hd64"));
  auto dev = make_cpu_device(2);
  auto m = small_model(*dev, ck, 128);  // 8 blocks
  for (int s = 0; s < 4; ++s) {         // each leaves 4 cached blocks behind
    auto seq = m->new_sequence();
    const std::vector<int32_t> t = ids(64, 10 + s);
    m->prefill(*seq, t);
    m->cache_prefix(*seq, t);
  }
  EXPECT_EQ(m->kv_pool().cached_blocks, 8);
  EXPECT_EQ(m->kv_pool().free_blocks, 8);
  // The most recent prompt is still there; the oldest gave way.
  auto recent = m->new_sequence();
  EXPECT_EQ(m->reuse_prefix(*recent, ids(65, 13)), 64);
  auto old = m->new_sequence();
  EXPECT_EQ(m->reuse_prefix(*old, ids(65, 10)), 0);
  // A sequence needing the whole pool gets it: cached blocks are evicted, not an error.
  recent.reset();
  auto big = m->new_sequence();
  m->prefill(*big, ids(128, 20));
  EXPECT_EQ(m->kv_pool().free_blocks, 0);
}

TEST(PrefixCache, RewrittenBlocksLeaveTheCache) {
  const Checkpoint ck = Checkpoint::open(test::golden("qwen2-tied-hd64"));
  auto dev = make_cpu_device(2);
  auto m = small_model(*dev, ck, 1024);
  const std::vector<int32_t> a = ids(48, 4);
  auto seq = m->new_sequence();
  m->prefill(*seq, a);
  m->cache_prefix(*seq, a);
  seq->truncate(20);  // block 1 keeps 4 positions and is written again
  const std::vector<int32_t> other = ids(28, 5);
  m->prefill(*seq, other);
  std::vector<int32_t> b(a.begin(), a.begin() + 20);
  b.insert(b.end(), other.begin(), other.end());
  m->cache_prefix(*seq, b);
  // a's first block is still good; its second is gone (its positions were rewritten).
  auto probe = m->new_sequence();
  EXPECT_EQ(m->reuse_prefix(*probe, a), 16);
  auto probe_b = m->new_sequence();
  EXPECT_EQ(m->reuse_prefix(*probe_b, b), 32);
  expect_as_fresh(*m, *probe_b, b);
}

// Through the scheduler: a second request sharing a long prefix computes only what is new and
// answers exactly as the first would alone.
TEST(PrefixCache, SchedulerReusesASharedSystemPrompt) {
  const Checkpoint ck = Checkpoint::open(test::golden("qwen2-tied-hd64"));
  auto dev = make_cpu_device(2);
  auto m = small_model(*dev, ck, 2048);
  const std::vector<int32_t> system = ids(150, 6);
  auto with = [&](int seed) {
    std::vector<int32_t> p = system;
    const std::vector<int32_t> q = ids(9, seed);
    p.insert(p.end(), q.begin(), q.end());
    return p;
  };
  auto run = [&](Scheduler& s, const std::vector<int32_t>& prompt) {
    GenerationRequest r;
    r.prompt = prompt;
    r.settings.max_new_tokens = 5;
    std::vector<int32_t> out;
    s.submit(r, [&](const GenerationEvent& e) { out.push_back(e.token); });
    while (s.step()) {
    }
    return out;
  };
  SchedulerOptions off;
  off.prefix_cache = false;
  Scheduler plain(*m, nullptr, off);
  const std::vector<int32_t> want = run(plain, with(8));
  EXPECT_EQ(plain.stats().prompt_tokens, 159);

  Scheduler s(*m, nullptr);
  run(s, with(7));
  EXPECT_EQ(s.stats().prompt_tokens, 159);
  EXPECT_EQ(run(s, with(8)), want);
  EXPECT_EQ(s.stats().prompt_tokens, 159 + 159 - 144);  // 9 whole blocks came from the cache
}

}  // namespace
}  // namespace bringup
