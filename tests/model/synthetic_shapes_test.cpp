// The policies' thresholds on shapes the golden checkpoints do not cover, scored against the
// project's own fp32 path on random checkpoints written by synth: head_dim 128 over a single KV
// head (ratio 7) with a 1000-token prompt, Arcee-Spark's full layer width with the full 151936
// vocabulary, tied and untied embeddings.
#include <gtest/gtest.h>

#include "model_test_util.h"

namespace bringup {
namespace {

struct Shape {
  std::string name;
  ModelConfig config;
  int64_t prompt_len, new_tokens;
};

std::vector<int32_t> prompt_ids(int64_t n, int64_t vocab, uint64_t seed) {
  std::vector<int32_t> v(n);
  uint64_t x = 12345 + seed;
  for (auto& id : v) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    id = static_cast<int32_t>((x >> 33) % vocab);
  }
  return v;
}

void check_policies(const Shape& s) {
  test::TempDir dir(s.name);
  SynthOptions o;
  o.config = s.config;
  o.seed = 7;
  o.shard_bytes = size_t{256} << 20;  // sharded, as real checkpoints are
  write_synthetic_checkpoint(o, dir.path());
  const Checkpoint ck = Checkpoint::open(dir.path());
  auto dev = make_cpu_device(2);
  const int64_t max_len = s.prompt_len + s.new_tokens;

  // Three prompts (the full length, a third, and a short one) so that the scores rest on enough
  // steps to compare with a threshold.
  Reference ref;
  {
    auto fp32 = build_model(ck, *dev, max_len, Precision::kFp32);
    for (int64_t len : {s.prompt_len, s.prompt_len / 3 + 1, int64_t{9}}) {
      ref.cases.push_back(make_reference_case(
          *fp32, s.name, prompt_ids(len, s.config.vocab_size, len), s.new_tokens));
    }
  }
  const struct {
    Precision p;
    double top1, top5;
  } thresholds[] = {{Precision::kBf16, 0.97, 0.99},
                    {Precision::kBfp8Mixed, 0.92, 0.99},
                    {Precision::kBfp8, 0.90, 0.99}};
  for (const auto& th : thresholds) {
    auto model = build_model(ck, *dev, max_len, th.p);
    const EvalTotals t = test::score(*model, ref);
    const double top1 = test::frac(t.top1, t.steps), top5 = test::frac(t.top5, t.steps);
    std::printf("%s %s: top1 %.4f top5 %.4f\n", s.name.c_str(),
                std::string(precision_name(th.p)).c_str(), top1, top5);
    EXPECT_GE(top1, th.top1) << precision_name(th.p);
    EXPECT_GE(top5, th.top5) << precision_name(th.p);
  }
}

TEST(SyntheticShapes, HeadDim128RatioSevenLongPrompt) {
  Shape s{"hd128-ratio7", test::small_config(), 1000, 64};
  s.config.hidden_size = 896;
  s.config.num_attention_heads = 7;
  s.config.num_key_value_heads = 1;
  s.config.head_dim = 128;
  s.config.intermediate_size = 2432;
  s.config.num_hidden_layers = 3;
  s.config.vocab_size = 4096;
  s.config.tie_word_embeddings = false;
  check_policies(s);
}

TEST(SyntheticShapes, ArceeSparkLayerWidthFullVocabTied) {
  Shape s{"arcee-width", synth_preset("arcee-spark"), 64, 32};
  s.config.num_hidden_layers = 1;
  s.config.vocab_size = 151936;
  s.config.tie_word_embeddings = true;
  check_policies(s);
}

TEST(SyntheticShapes, FullVocabUntied) {
  Shape s{"vocab-untied", test::small_config(), 200, 64};
  s.config.vocab_size = 151936;
  s.config.hidden_size = 256;
  s.config.num_attention_heads = 4;
  s.config.num_key_value_heads = 1;
  s.config.head_dim = 64;
  s.config.intermediate_size = 704;
  s.config.tie_word_embeddings = false;
  check_policies(s);
}

}  // namespace
}  // namespace bringup
