// Loading checkpoints: configs, generation configs, safetensors in F32 / BF16 / F16, single files
// and shards with an index.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../cli/cli_runner.h"
#include "../model/model_test_util.h"
#include "core/dtype.h"
#include "core/mapped_file.h"
#include "io/safetensors.h"

namespace bringup {
namespace {

namespace fs = std::filesystem;

TEST(Config, ArceeSparkShape) {
  const ModelConfig c =
      load_model_config(fs::path(BRINGUP_TEST_DATA) / "configs/arcee-spark.config.json");
  EXPECT_EQ(c.vocab_size, 152064);
  EXPECT_EQ(c.hidden_size, 3584);
  EXPECT_EQ(c.intermediate_size, 18944);
  EXPECT_EQ(c.num_hidden_layers, 28);
  EXPECT_EQ(c.num_attention_heads, 28);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.group_size(), 7);
  EXPECT_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.max_position_embeddings, 32768);
  EXPECT_FALSE(c.tie_word_embeddings);
}

TEST(Config, ExplicitHeadDimAndDefaults) {
  const ModelConfig c = parse_model_config(R"({"model_type": "qwen2", "vocab_size": 10,
      "hidden_size": 64, "intermediate_size": 8, "num_hidden_layers": 1,
      "num_attention_heads": 4, "head_dim": 32, "max_position_embeddings": 16,
      "rope_scaling": {"rope_type": "default"}})",
                                           "c");
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_EQ(c.num_key_value_heads, 4);  // defaults to the query heads, as in transformers
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.hidden_act, "silu");
}

TEST(Config, ErrorsNameTheField) {
  try {
    parse_model_config(R"({"model_type": "qwen2", "vocab_size": "big"})", "x/config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "x/config.json: field 'vocab_size' must be an integer, found a string");
  }
  EXPECT_THROW(parse_model_config(R"({"model_type": "qwen2"})", "c"), Error);
}

TEST(GenerationConfig, SeveralEosIdsAndSampling) {
  const GenerationConfig g = load_generation_config(
      fs::path(BRINGUP_TEST_DATA) / "configs/qwen2-7b-instruct.generation_config.json");
  EXPECT_EQ(g.eos_token_ids, (std::vector<int64_t>{151645, 151643}));
  EXPECT_TRUE(g.do_sample);
  EXPECT_DOUBLE_EQ(g.temperature, 0.7);
  EXPECT_EQ(g.top_k, 20);
  EXPECT_DOUBLE_EQ(g.top_p, 0.8);
  EXPECT_DOUBLE_EQ(g.repetition_penalty, 1.05);
  EXPECT_THROW(parse_generation_config(R"({"top_p": 0})", "g"), Error);
}

// Rewrites a checkpoint's tensors in another dtype (values converted from the original).
void convert_checkpoint(const fs::path& from, const fs::path& to, StorageDType dtype,
                        size_t shard_tensors) {
  const Checkpoint ck = Checkpoint::open(from);
  fs::create_directories(to);
  fs::copy_file(from / "config.json", to / "config.json");
  std::vector<const TensorView*> all;
  for (const auto& [name, t] : ck.tensors()) all.push_back(&t);
  nlohmann::json map = nlohmann::json::object();
  const size_t shards = shard_tensors ? (all.size() + shard_tensors - 1) / shard_tensors : 1;
  for (size_t s = 0; s < shards; ++s) {
    const std::string file =
        shard_tensors ? "part-" + std::to_string(s) + ".safetensors" : "model.safetensors";
    std::vector<SafetensorsSpec> specs;
    std::vector<const TensorView*> in;
    for (size_t i = s * shard_tensors;
         i < all.size() && (shard_tensors == 0 || i < (s + 1) * shard_tensors); ++i) {
      specs.push_back({all[i]->name, dtype, all[i]->shape});
      in.push_back(all[i]);
      map[all[i]->name] = file;
    }
    write_safetensors(to / file, specs, [&](size_t t, size_t first, std::byte* out, size_t n) {
      const size_t es = storage_dtype_size(dtype);
      for (size_t j = 0; j < n / es; ++j) {
        const float v = in[t]->at(static_cast<int64_t>(first / es + j));
        if (dtype == StorageDType::kF32) {
          std::memcpy(out + 4 * j, &v, 4);
        } else {
          const uint16_t h = f32_to_f16(v);
          std::memcpy(out + 2 * j, &h, 2);
        }
      }
    });
  }
  if (shard_tensors) {
    std::ofstream(to / "model.safetensors.index.json")
        << nlohmann::json({{"metadata", {{"total_size", 0}}}, {"weight_map", map}}).dump();
  }
}

std::vector<float> last_logits(const fs::path& dir, const std::vector<int32_t>& ids) {
  const Checkpoint ck = Checkpoint::open(dir);
  auto dev = make_cpu_device(2);
  auto model = build_model(ck, *dev, 64, Precision::kFp32);
  auto seq = model->new_sequence();
  const auto l = model->prefill(*seq, ids);
  return {l.begin(), l.end()};
}

TEST(Checkpoint, F32ShardsGiveTheSameModel) {
  test::TempDir dir("f32");
  convert_checkpoint(test::golden("qwen2-tied-hd64"), dir / "f32", StorageDType::kF32, 7);
  const Checkpoint ck = Checkpoint::open(dir / "f32");
  EXPECT_EQ(ck.tensor("model.norm.weight").dtype, StorageDType::kF32);
  const std::vector<int32_t> ids = {5, 17, 300, 2000, 9};
  EXPECT_EQ(last_logits(dir / "f32", ids), last_logits(test::golden("qwen2-tied-hd64"), ids));
}

TEST(Checkpoint, F16Loads) {
  test::TempDir dir("f16");
  convert_checkpoint(test::golden("qwen2-tied-hd64"), dir / "f16", StorageDType::kF16, 0);
  const std::vector<int32_t> ids = {5, 17, 300, 2000, 9};
  const auto a = last_logits(dir / "f16", ids),
             b = last_logits(test::golden("qwen2-tied-hd64"), ids);
  ASSERT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, double(std::fabs(a[i] - b[i])));
  EXPECT_LT(worst, 0.05);  // f16 rounds some bf16 values
  EXPECT_EQ(std::max_element(a.begin(), a.end()) - a.begin(),
            std::max_element(b.begin(), b.end()) - b.begin());
}

TEST(Checkpoint, IndexNamingAMissingShardOrTensor) {
  test::TempDir dir("index");
  convert_checkpoint(test::golden("qwen2-tied-hd64"), dir / "ck", StorageDType::kF32, 7);
  auto index = nlohmann::json::parse(test::slurp(dir / "ck/model.safetensors.index.json"));
  index["weight_map"]["model.norm.weight"] = "part-0.safetensors";  // it lives elsewhere
  std::ofstream(dir / "ck/model.safetensors.index.json", std::ios::trunc) << index.dump();
  EXPECT_THROW(Checkpoint::open(dir / "ck"), Error);
  index["weight_map"]["model.norm.weight"] = "../elsewhere.safetensors";
  std::ofstream(dir / "ck/model.safetensors.index.json", std::ios::trunc) << index.dump();
  EXPECT_THROW(Checkpoint::open(dir / "ck"), Error);
  index["weight_map"]["model.norm.weight"] = "absent.safetensors";
  std::ofstream(dir / "ck/model.safetensors.index.json", std::ios::trunc) << index.dump();
  EXPECT_THROW(Checkpoint::open(dir / "ck"), Error);
}

TEST(Checkpoint, ReleaseKeepsTensorsReadable) {
  const Checkpoint ck = Checkpoint::open(test::golden("qwen2-gqa7-small"));
  const TensorView& t = ck.tensor("lm_head.weight");
  const float before = t.at(t.numel() - 1);
  ck.release(t);
  EXPECT_EQ(t.at(t.numel() - 1), before);  // refaults from the file
  EXPECT_THROW(ck.tensor("no.such.tensor"), Error);
}

// Results are labelled with the checkpoint's directory name however the path was typed.
TEST(Checkpoint, NameIgnoresTrailingSlashAndDot) {
  const fs::path dir = test::golden("qwen2-gqa7-small");
  for (const std::string suffix : {"", "/", "/."}) {
    EXPECT_EQ(Checkpoint::open(dir.string() + suffix).name(), "qwen2-gqa7-small") << suffix;
  }
}

}  // namespace
}  // namespace bringup
