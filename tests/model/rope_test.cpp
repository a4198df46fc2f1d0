// RoPE scaling: the inverse frequencies and attention factor of every scaling type equal what
// transformers 4.49 computes (tests/data/rope/parameters.json, written by
// scripts/rope_reference.py from transformers itself), and rope_scaling in config.json is read
// with each type's keys and refused by name otherwise.
#include "models/rope.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bringup/error.h"

namespace bringup {
namespace {

using nlohmann::json;

std::string config_text(const json& fields) {
  json c = {{"model_type", "qwen2"},         {"vocab_size", 64},       {"hidden_size", 64},
            {"intermediate_size", 128},      {"num_hidden_layers", 1}, {"num_attention_heads", 1},
            {"max_position_embeddings", 512}};
  for (const auto& [k, v] : fields.items()) c[k] = v;
  return c.dump();
}

ModelConfig config_of(const json& fields) {
  return parse_model_config(config_text(fields), "config.json");
}

std::string refusal(const json& fields) {
  try {
    config_of(fields);
  } catch (const Error& e) {
    return e.what();
  }
  return "accepted";
}

TEST(Rope, EveryScalingTypeEqualsTransformers) {
  std::ifstream in(BRINGUP_TEST_DATA "/rope/parameters.json");
  ASSERT_TRUE(in) << "tests/data/rope/parameters.json";
  std::stringstream text;
  text << in.rdbuf();
  const json data = json::parse(text.str());
  int checked = 0;
  int64_t worst = 0, off = 0, total = 0;
  for (const json& c : data["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const json& cfg = c["config"];
    const int64_t head_dim = cfg["head_dim"];
    const ModelConfig m = config_of({{"hidden_size", head_dim * 4},
                                     {"num_attention_heads", 4},
                                     {"rope_theta", cfg["rope_theta"]},
                                     {"max_position_embeddings", cfg["max_position_embeddings"]},
                                     {"rope_scaling", cfg["rope_scaling"]}});
    for (const json& l : c["lengths"]) {
      const int64_t seq_len = l["seq_len"];
      const RopeParameters p = rope_parameters(m, seq_len);
      const std::vector<uint32_t> want = l["inv_freq_bits"];
      ASSERT_EQ(p.inv_freq.size(), want.size());
      for (size_t i = 0; i < want.size(); ++i) {
        const int64_t ulps = static_cast<int64_t>(std::bit_cast<uint32_t>(p.inv_freq[i])) -
                             static_cast<int64_t>(want[i]);
        worst = std::max(worst, std::abs(ulps));
        off += ulps != 0;
        total += 1;
        EXPECT_LE(std::abs(ulps), 1) << "seq_len " << seq_len << " frequency " << i << ": "
                                     << p.inv_freq[i] << " vs " << std::bit_cast<float>(want[i]);
      }
      EXPECT_EQ(p.attention_factor, static_cast<float>(l["attention_factor"].get<double>()))
          << "seq_len " << seq_len;
      ++checked;
    }
  }
  EXPECT_GE(checked, 20);
  std::printf("%lld of %lld frequencies 1 ulp off (worst %lld)\n", static_cast<long long>(off),
              static_cast<long long>(total), static_cast<long long>(worst));
}

TEST(Rope, ScaledModelsTakeFactorTimesTheOriginalContext) {
  EXPECT_EQ(config_of({}).context_length(), 512);
  // Qwen2's YaRN instructions: both lengths 32768, factor 4.
  EXPECT_EQ(
      config_of(
          {{"max_position_embeddings", 32768},
           {"rope_scaling",
            {{"type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32768}}}})
          .context_length(),
      131072);
  // Llama 3.1 states its long context already: the longer of the two.
  EXPECT_EQ(config_of({{"max_position_embeddings", 131072},
                       {"rope_scaling",
                        {{"rope_type", "llama3"},
                         {"factor", 8.0},
                         {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0},
                         {"original_max_position_embeddings", 8192}}}})
                .context_length(),
            131072);
  EXPECT_EQ(config_of({{"rope_scaling", {{"type", "linear"}, {"factor", 2.0}}}}).context_length(),
            1024);
}

TEST(Rope, UnsupportedScalingIsRefusedByName) {
  EXPECT_NE(refusal({{"rope_scaling", {{"type", "longrope"}}}})
                .find("field 'rope_scaling.type' is 'longrope'; supported: default"),
            std::string::npos);
  EXPECT_NE(refusal({{"rope_scaling", {{"type", "yarn"}, {"factor", 4.0}, {"mscale", 0.7}}}})
                .find("field 'rope_scaling.mscale' is not supported for rope type 'yarn'"),
            std::string::npos);
  EXPECT_NE(refusal({{"rope_scaling", {{"type", "linear"}}}})
                .find("field 'rope_scaling.factor' is required for rope type 'linear'"),
            std::string::npos);
  EXPECT_NE(refusal({{"rope_scaling", {{"type", "linear"}, {"factor", "2"}}}})
                .find("field 'rope_scaling.factor' must be a number, not a string"),
            std::string::npos);
  EXPECT_NE(refusal({{"rope_scaling", {{"type", "dynamic"}, {"factor", 0.5}}}})
                .find("field 'rope_scaling.factor' must be in 1..1024"),
            std::string::npos);
  EXPECT_NE(refusal({{"rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}}}})
                .find("is required for rope type 'llama3'"),
            std::string::npos);
  EXPECT_EQ(refusal({{"rope_scaling", {{"type", "default"}}}}), "accepted");
  EXPECT_EQ(refusal({{"rope_scaling", nullptr}}), "accepted");
}

}  // namespace
}  // namespace bringup
