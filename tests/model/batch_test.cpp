// Batched forward steps: a sequence's logits are bit-identical whatever else shares its steps, in
// whatever order, wherever its prompt is split into steps, and whatever the thread count, under
// every precision policy and kernel set. Also the shared KV pool: forks share blocks and copy on
// write, and a token budget bounds the live total, not the number of sequences.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>

#include "../unit/test_util.h"
#include "device/cpu_device.h"
#include "model_test_util.h"

namespace bringup {
namespace {

constexpr int kSequences = 8;
constexpr int kDecodeTokens = 4;

// Tokens of sequence s: a prompt of a length of its own, then kDecodeTokens more (fed as
// decode steps, teacher-forced so that every schedule sees the same ids).
std::vector<int32_t> tokens_of(int s, int64_t vocab) {
  const int64_t prompt = 3 + 11 * s % 37;
  std::vector<int32_t> ids(prompt + kDecodeTokens);
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = static_cast<int32_t>((i * 7919 + s * 104729 + 17) % vocab);
  }
  return ids;
}
int64_t prompt_len(int s) {
  return 3 + 11 * s % 37;
}

// A schedule: steps, each a list of (sequence, number of its next tokens).
using Schedule = std::vector<std::vector<std::pair<int, int64_t>>>;
// Logits of every position of every sequence, as raw bytes.
using Logits = std::map<std::pair<int, int64_t>, std::vector<float>>;

Logits run(Model& model, const Schedule& schedule) {
  const int64_t vocab = model.config().vocab_size;
  std::vector<std::vector<int32_t>> tokens;
  std::vector<std::unique_ptr<Sequence>> seqs;
  for (int s = 0; s < kSequences; ++s) {
    tokens.push_back(tokens_of(s, vocab));
    seqs.push_back(model.new_sequence());
  }
  Logits out;
  for (const auto& step : schedule) {
    std::vector<BatchRow> rows;
    std::vector<std::pair<int, int64_t>> who;
    for (const auto& [s, n] : step) {
      for (int64_t i = 0; i < n; ++i) {
        const int64_t pos = seqs[s]->length() + i;
        rows.push_back({seqs[s].get(), tokens[s][pos], pos, true});
        who.push_back({s, pos});
      }
    }
    const std::span<const float> logits = model.step(rows);
    EXPECT_EQ(logits.size(), rows.size() * vocab);
    for (size_t r = 0; r < rows.size(); ++r) {
      out[who[r]].assign(logits.begin() + r * vocab, logits.begin() + (r + 1) * vocab);
    }
  }
  for (int s = 0; s < kSequences; ++s) {
    EXPECT_EQ(seqs[s]->length(), static_cast<int64_t>(tokens[s].size()));
  }
  return out;
}

// Each sequence alone: its prompt in one step, then one decode step per token.
Schedule alone() {
  Schedule sch;
  for (int s = 0; s < kSequences; ++s) {
    sch.push_back({{s, prompt_len(s)}});
    for (int i = 0; i < kDecodeTokens; ++i) sch.push_back({{s, 1}});
  }
  return sch;
}

// Every prompt in one step, then decode steps of all sequences, in the given sequence order.
Schedule together(std::vector<int> order) {
  Schedule sch(1);
  for (int s : order) sch[0].push_back({s, prompt_len(s)});
  for (int i = 0; i < kDecodeTokens; ++i) {
    sch.push_back({});
    for (int s : order) sch.back().push_back({s, 1});
    std::rotate(order.begin(), order.begin() + 3, order.end());
  }
  return sch;
}

// Sequences join one per step; prompts go in chunks of 1 + s % 4 tokens, mixed into the decode
// steps of the sequences already running.
Schedule staggered() {
  Schedule sch;
  std::vector<int64_t> done(kSequences, 0);
  for (int step = 0;; ++step) {
    std::vector<std::pair<int, int64_t>> rows;
    for (int s = kSequences - 1; s >= 0; --s) {
      if (s > step) continue;
      const int64_t total = prompt_len(s) + kDecodeTokens;
      if (done[s] == total) continue;
      const int64_t n =
          done[s] < prompt_len(s) ? std::min<int64_t>(1 + s % 4, prompt_len(s) - done[s]) : 1;
      rows.push_back({s, n});
      done[s] += n;
    }
    if (rows.empty()) break;
    sch.push_back(rows);
  }
  return sch;
}

void expect_identical(const Logits& want, const Logits& got, const std::string& what) {
  ASSERT_EQ(want.size(), got.size()) << what;
  for (const auto& [key, logits] : want) {
    const auto it = got.find(key);
    ASSERT_NE(it, got.end()) << what;
    ASSERT_EQ(0, std::memcmp(logits.data(), it->second.data(), logits.size() * 4))
        << what << ": sequence " << key.first << " position " << key.second
        << " differs from running it alone";
  }
}

void check_batch_invariance(const Checkpoint& ck) {
  for (const auto& [kernels_name, kernels] : test::kernel_sets()) {
    for (Precision p :
         {Precision::kFp32, Precision::kBf16, Precision::kBfp8Mixed, Precision::kBfp8}) {
      SCOPED_TRACE(kernels_name + " " + std::string(precision_name(p)));
      ModelOptions o;
      o.precision = p;
      o.max_seq_len = 64;
      o.max_sequences = kSequences;
      o.kv_block_size = 16;  // prompts cross block boundaries
      CpuDevice two(2, kernels), one(1, kernels);
      auto model = build_model(ck, two, o);
      const Logits reference = run(*model, alone());
      expect_identical(reference, run(*model, together({0, 1, 2, 3, 4, 5, 6, 7})), "together");
      expect_identical(reference, run(*model, together({5, 2, 7, 0, 3, 6, 1, 4})), "reordered");
      expect_identical(reference, run(*model, staggered()), "staggered with prompt chunks");
      auto single = build_model(ck, one, o);
      expect_identical(reference, run(*single, staggered()), "one thread");
    }
  }
}

TEST(BatchInvariance, Qwen2Gqa7Golden) {
  check_batch_invariance(Checkpoint::open(test::golden("qwen2-gqa7-small")));
}

TEST(BatchInvariance, Qwen2TiedHd64Golden) {
  check_batch_invariance(Checkpoint::open(test::golden("qwen2-tied-hd64")));
}

TEST(BatchInvariance, LlamaGolden) {
  check_batch_invariance(Checkpoint::open(test::golden("llama-gqa4-small")));
}

TEST(BatchInvariance, HeadDim128SevenToOne) {
  test::TempDir dir("batch-hd128");
  SynthOptions so;
  so.config = test::small_config();
  so.config.num_attention_heads = 7;
  so.config.num_key_value_heads = 1;
  so.config.head_dim = 128;
  so.config.hidden_size = 7 * 128;
  so.seed = 3;
  write_synthetic_checkpoint(so, dir.path());
  check_batch_invariance(Checkpoint::open(dir.path()));
}

// Decoding `length` tokens one by one gives exactly the logits of one prefill of them.
void expect_decode_equals_prefill(const std::string& golden, ModelOptions o, size_t length,
                                  int seed) {
  const Checkpoint ck = Checkpoint::open(test::golden(golden));
  auto dev = make_cpu_device(2);
  o.max_sequences = 2;
  auto model = build_model(ck, *dev, o);
  const std::vector<int32_t> ids = tokens_of(seed, model->config().vocab_size);
  std::vector<int32_t> long_ids;
  while (long_ids.size() < length) long_ids.insert(long_ids.end(), ids.begin(), ids.end());
  long_ids.resize(length);
  auto whole = model->new_sequence();
  const std::span<const float> all = model->prefill(*whole, long_ids, true);
  const std::vector<float> prefill(all.begin(), all.end());
  auto seq = model->new_sequence();
  const size_t vocab = static_cast<size_t>(model->config().vocab_size);
  for (size_t i = 0; i < long_ids.size(); ++i) {
    const std::span<const float> step = model->decode(*seq, long_ids[i]);
    ASSERT_EQ(0, std::memcmp(step.data(), prefill.data() + i * vocab, vocab * 4)) << i;
  }
}

// Attention runs every row the same way, in fixed chunks from position 0: past the 256-position
// chunk, decode equals prefill bit for bit.
TEST(BatchInvariance, DecodeEqualsPrefillExactly) {
  ModelOptions o;
  o.precision = Precision::kBfp8Mixed;
  o.max_seq_len = 300;
  o.kv_block_size = 16;
  expect_decode_equals_prefill("qwen2-gqa7-small", o, 290, 3);
}

// With a bfloat8_b KV cache: each row is rounded once, when it is written, so decode reads what
// prefill read, and the prefix cache and forks share rows that are the same bits.
TEST(BatchInvariance, DecodeEqualsPrefillWithABfp8Cache) {
  ModelOptions o;
  o.precision = Precision::kBf16;
  o.kv_precision = KvPrecision::kBfp8;
  o.max_seq_len = 300;
  expect_decode_equals_prefill("llama-gqa4-small", o, 280, 4);
}

// The same past a sliding window (qwen2-yarn-small attends over its last 512 positions), where
// rows start their attention mid-chunk, and with YaRN's scaled RoPE tables.
TEST(BatchInvariance, DecodeEqualsPrefillPastTheSlidingWindow) {
  ModelOptions o;
  o.precision = Precision::kBf16;
  o.max_seq_len = 700;
  expect_decode_equals_prefill("qwen2-yarn-small", o, 600, 5);
}

// Long steps run attention in passes of rows (a fixed buffer of partial softmaxes): the 440 prompt
// rows past position 2560 take two passes, 64 rows one, and each row's logits are the same bits.
TEST(BatchInvariance, AttentionPassesDoNotChangeResults) {
  const Checkpoint ck = Checkpoint::open(test::golden("qwen2-gqa7-small"));
  auto dev = make_cpu_device(2);
  std::vector<std::vector<float>> logits;
  for (int64_t rows : {512, 64}) {
    ModelOptions o;
    o.precision = Precision::kBf16;
    o.max_seq_len = 3100;
    o.prefill_chunk = rows;
    auto model = build_model(ck, *dev, o);
    const std::vector<int32_t> ids = tokens_of(7, model->config().vocab_size);
    std::vector<int32_t> long_ids;
    while (long_ids.size() < 3000) long_ids.insert(long_ids.end(), ids.begin(), ids.end());
    long_ids.resize(3000);
    auto seq = model->new_sequence();
    const std::span<const float> all = model->prefill(*seq, long_ids, true);
    logits.emplace_back(all.begin(), all.end());
  }
  ASSERT_EQ(logits[0].size(), logits[1].size());
  EXPECT_EQ(0, std::memcmp(logits[0].data(), logits[1].data(), logits[0].size() * 4));
}

// A fork shares its parent's blocks; writing into a shared block copies it, so the parent and
// the fork each continue as if alone.
TEST(KvPool, ForkSharesBlocksAndCopiesOnWrite) {
  const Checkpoint ck = Checkpoint::open(test::golden("qwen2-tied-hd64"));
  auto dev = make_cpu_device(2);
  ModelOptions o;
  o.precision = Precision::kBf16;
  o.max_seq_len = 64;
  o.kv_block_size = 8;
  o.kv_budget_tokens = 128;
  auto model = build_model(ck, *dev, o);
  const std::vector<int32_t> prompt = {5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};  // 1.5 blocks
  const size_t vocab = static_cast<size_t>(model->config().vocab_size);
  auto logits_after = [&](std::vector<int32_t> ids) {
    auto s = model->new_sequence();
    const std::span<const float> l = model->prefill(*s, ids);
    return std::vector<float>(l.begin(), l.end());
  };

  auto parent = model->new_sequence();
  model->prefill(*parent, prompt);
  const int64_t free_before = model->kv_pool().free_blocks;
  auto child = model->fork(*parent);
  EXPECT_EQ(child->length(), parent->length());
  EXPECT_EQ(model->kv_pool().free_blocks, free_before) << "a fork takes no blocks";
  EXPECT_EQ(child->block_table(), parent->block_table());

  const std::span<const float> a = model->decode(*child, 100);
  const std::vector<float> child_logits(a.begin(), a.end());
  EXPECT_EQ(model->kv_pool().free_blocks, free_before - 1) << "the shared half block is copied";
  EXPECT_NE(child->block_table()[1], parent->block_table()[1]);
  EXPECT_EQ(child->block_table()[0], parent->block_table()[0]);
  const std::span<const float> b = model->decode(*parent, 200);
  const std::vector<float> parent_logits(b.begin(), b.end());

  std::vector<int32_t> want_child = prompt, want_parent = prompt;
  want_child.push_back(100);
  want_parent.push_back(200);
  EXPECT_EQ(0, std::memcmp(child_logits.data(), logits_after(want_child).data(), vocab * 4));
  EXPECT_EQ(0, std::memcmp(parent_logits.data(), logits_after(want_parent).data(), vocab * 4));

  child.reset();
  parent.reset();
  EXPECT_EQ(model->kv_pool().free_blocks, model->kv_pool().total_blocks);
}

// 64 sequences under a budget far below 64 x max_seq_len run while the live total fits; past it
// the error names the budget, and nothing changes.
TEST(KvPool, TokenBudgetBoundsTheLiveTotal) {
  const Checkpoint ck = Checkpoint::open(test::golden("qwen2-tied-hd64"));
  auto dev = make_cpu_device(2);
  ModelOptions o;
  o.precision = Precision::kBf16;
  o.max_seq_len = 512;
  o.kv_block_size = 16;
  o.kv_budget_tokens = 64 * 32;  // 64 x 512 would be 32768
  auto model = build_model(ck, *dev, o);
  EXPECT_EQ(model->kv_pool().total_blocks, 128);
  std::vector<std::unique_ptr<Sequence>> seqs;
  std::vector<BatchRow> rows;
  for (int s = 0; s < 64; ++s) seqs.push_back(model->new_sequence());
  for (int t = 0; t < 32; ++t) {  // 64 sequences x 32 tokens fill the pool exactly
    rows.clear();
    for (int s = 0; s < 64; ++s) rows.push_back({seqs[s].get(), (s + t) % 300, t, s == 0});
    model->step(rows);
  }
  EXPECT_EQ(model->kv_pool().free_blocks, 0);
  rows.clear();
  for (int s = 0; s < 64; ++s) rows.push_back({seqs[s].get(), 1, 32, false});
  try {
    model->step(rows);
    FAIL() << "expected the pool to be full";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("budget 2048 tokens"), std::string::npos) << e.what();
  }
  for (const auto& s : seqs) EXPECT_EQ(s->length(), 32);
  seqs.resize(32);  // ending sequences returns their blocks
  rows.resize(32);
  EXPECT_NO_THROW(model->step(rows));
}

TEST(Batch, RowsMustContinueTheirSequence) {
  const Checkpoint ck = Checkpoint::open(test::golden("qwen2-tied-hd64"));
  auto dev = make_cpu_device(1);
  auto model = build_model(ck, *dev, 32, Precision::kFp32);
  auto seq = model->new_sequence();
  const BatchRow gap{seq.get(), 1, 1, true};
  EXPECT_THROW(model->step({&gap, 1}), Error);
  const BatchRow rows[] = {{seq.get(), 1, 0, true}, {seq.get(), 2, 0, true}};
  EXPECT_THROW(model->step(rows), Error);
  const BatchRow bad_id{seq.get(), -1, 0, true};
  EXPECT_THROW(model->step({&bad_id, 1}), Error);
  EXPECT_EQ(seq->length(), 0);
}

}  // namespace
}  // namespace bringup
