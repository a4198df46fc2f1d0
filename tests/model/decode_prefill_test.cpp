// Decoding token by token must give the logits of one prefill of the whole sequence (fp32),
// across KV-cache block boundaries and prefill chunks, and after a 32K-token prefill.
#include <gtest/gtest.h>

#include <cmath>

#include "model_test_util.h"

namespace bringup {
namespace {

std::vector<int32_t> ids(int64_t n, int64_t vocab, uint32_t seed) {
  std::vector<int32_t> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<int32_t>((i * 7919 + seed * 104729) % vocab);
  return v;
}

// max |a - b| / max |b| over one row of logits
double rel_err(std::span<const float> a, std::span<const float> b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    num = std::max(num, std::fabs(double{a[i]} - b[i]));
    den = std::max(den, std::fabs(double{b[i]}));
  }
  return num / den;
}

void check_decode_matches_prefill(const Checkpoint& ck, int64_t n) {
  auto dev = make_cpu_device(2);
  ModelOptions o;
  o.precision = Precision::kFp32;
  o.kv_block_size = 16;  // n crosses several block boundaries
  o.max_seq_len = 256;
  o.max_sequences = 2;
  auto model = build_model(ck, *dev, o);
  const int64_t vocab = model->config().vocab_size;
  const std::vector<int32_t> tokens = ids(n, vocab, 3);

  std::vector<float> prefill_logits;
  {
    auto whole = model->new_sequence();
    const std::span<const float> all = model->prefill(*whole, tokens, true);
    prefill_logits.assign(all.begin(), all.end());
  }
  ASSERT_EQ(prefill_logits.size(), static_cast<size_t>(n * vocab));

  auto seq = model->new_sequence();
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) {
    const std::span<const float> step = model->decode(*seq, tokens[i]);
    worst = std::max(
        worst, rel_err(step, {prefill_logits.data() + i * vocab, static_cast<size_t>(vocab)}));
  }
  EXPECT_LE(worst, 1e-4);
  EXPECT_EQ(seq->length(), n);

  // Prefill of a prefix, then decode, then a second prefill on top of the cache (a chat turn).
  seq = model->new_sequence();
  model->prefill(*seq, std::span(tokens).first(10));
  for (int64_t i = 10; i < 20; ++i) model->decode(*seq, tokens[i]);
  const std::span<const float> rest = model->prefill(*seq, std::span(tokens).subspan(20), true);
  for (int64_t i = 20; i < n; ++i) {
    EXPECT_LE(rel_err({rest.data() + (i - 20) * vocab, static_cast<size_t>(vocab)},
                      {prefill_logits.data() + i * vocab, static_cast<size_t>(vocab)}),
              1e-4)
        << "position " << i;
  }
}

TEST(DecodeMatchesPrefill, GoldenGqa7) {
  check_decode_matches_prefill(Checkpoint::open(test::golden("qwen2-gqa7-small")), 45);
}

TEST(DecodeMatchesPrefill, HeadDim128SingleKvHead) {
  test::TempDir dir("dmp");
  SynthOptions o;
  o.config = test::small_config();
  o.config.hidden_size = 896;
  o.config.num_attention_heads = 7;
  o.config.num_key_value_heads = 1;
  o.config.head_dim = 128;
  o.config.intermediate_size = 1024;
  o.shard_bytes = 0;
  write_synthetic_checkpoint(o, dir.path());
  check_decode_matches_prefill(Checkpoint::open(dir.path()), 40);
}

// At long context: the last 64 tokens decoded after a prefill of 32704 give the logits of one
// prefill of all 32768 (fp32, a small synthetic checkpoint).
TEST(DecodeMatchesPrefill, AfterA32KPrefill) {
  test::TempDir dir("dmp32k");
  SynthOptions so;
  so.config = test::small_config();
  so.config.num_hidden_layers = 1;
  so.config.hidden_size = 64;
  so.config.head_dim = 16;
  so.config.intermediate_size = 128;
  so.config.vocab_size = 256;
  so.config.max_position_embeddings = 32768;
  so.shard_bytes = 0;
  write_synthetic_checkpoint(so, dir.path());
  const Checkpoint ck = Checkpoint::open(dir.path());
  auto dev = make_cpu_device(2);
  ModelOptions o;
  o.precision = Precision::kFp32;
  o.max_sequences = 2;
  auto model = build_model(ck, *dev, o);
  constexpr int64_t kLength = 32768, kDecoded = 64, kVocab = 256;
  const std::vector<int32_t> tokens = ids(kLength, kVocab, 9);
  auto whole = model->new_sequence();
  const std::span<const float> all_logits = model->prefill(*whole, tokens, true);
  const std::vector<float> all(all_logits.end() - kDecoded * kVocab, all_logits.end());
  whole.reset();
  auto seq = model->new_sequence();
  model->prefill(*seq, std::span(tokens).first(kLength - kDecoded));
  for (int64_t i = 0; i < kDecoded; ++i) {
    const std::span<const float> step = model->decode(*seq, tokens[kLength - kDecoded + i]);
    EXPECT_LE(rel_err(step, {all.data() + i * kVocab, kVocab}), 1e-4) << i;
  }
}

TEST(DecodeMatchesPrefill, ChunkedPrefillEqualsOnePass) {
  const Checkpoint ck = Checkpoint::open(test::golden("qwen2-tied-hd64"));
  auto dev = make_cpu_device(2);
  ModelOptions o;
  o.precision = Precision::kFp32;
  o.max_seq_len = 128;
  auto one = build_model(ck, *dev, o);
  o.prefill_chunk = 7;
  auto chunked = build_model(ck, *dev, o);
  const std::vector<int32_t> tokens = ids(50, 2048, 5);
  auto s1 = one->new_sequence();
  auto s2 = chunked->new_sequence();
  const std::span<const float> a = one->prefill(*s1, tokens, true);
  const std::span<const float> b = chunked->prefill(*s2, tokens, true);
  ASSERT_EQ(a.size(), b.size());
  for (int64_t i = 0; i < 50; ++i) {
    EXPECT_LE(rel_err({a.data() + i * 2048, 2048}, {b.data() + i * 2048, 2048}), 1e-5);
  }
}

TEST(Sequence, GrowingPastMaxSeqLenIsAnError) {
  const Checkpoint ck = Checkpoint::open(test::golden("qwen2-tied-hd64"));
  auto dev = make_cpu_device(2);
  auto model = build_model(ck, *dev, 16, Precision::kBf16);
  auto seq = model->new_sequence();
  const std::vector<int32_t> tokens = ids(17, 2048, 1);
  EXPECT_THROW(model->prefill(*seq, tokens), Error);
  model->prefill(*seq, std::span(tokens).first(16));
  EXPECT_THROW(model->decode(*seq, 1), Error);
  seq->truncate(8);
  EXPECT_EQ(seq->length(), 8);
  EXPECT_NO_THROW(model->decode(*seq, 1));
  EXPECT_THROW(model->decode(*seq, 2048), Error);  // outside the vocabulary
}

}  // namespace
}  // namespace bringup
