// Bad input to the CLI: every case is refused with a one-line error that names the problem and a
// non-zero exit code; none crashes.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../model/model_test_util.h"
#include "cli_runner.h"

namespace bringup {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class BadInput : public ::testing::Test {
 protected:
  BadInput() : dir_("bad-input") {}

  // A copy of the small golden checkpoint to break.
  fs::path checkpoint(const std::string& name) {
    const fs::path d = dir_ / name;
    fs::create_directories(d);
    for (const auto& e : fs::directory_iterator(test::golden("qwen2-tied-hd64"))) {
      fs::copy_file(e.path(), d / e.path().filename(), fs::copy_options::overwrite_existing);
      fs::permissions(d / e.path().filename(), fs::perms::owner_write, fs::perm_options::add);
    }
    return d;
  }

  // Rewrites model.safetensors with an edited header and the same data.
  static void edit_header(const fs::path& ck, const std::function<void(json&)>& edit) {
    const std::string bytes = test::slurp(ck / "model.safetensors");
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
    json header = json::parse(bytes.substr(8, n));
    edit(header);
    const std::string text = header.dump();
    std::ofstream out(ck / "model.safetensors", std::ios::binary | std::ios::trunc);
    const uint64_t len = text.size();
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((len >> (8 * i)) & 0xff));
    out << text << bytes.substr(8 + n);
  }

  static void edit_config(const fs::path& ck, const std::function<void(json&)>& edit) {
    json c = json::parse(test::slurp(ck / "config.json"));
    edit(c);
    std::ofstream(ck / "config.json", std::ios::trunc) << c.dump(2);
  }

  static void write(const fs::path& p, const std::string& text) {
    std::ofstream(p, std::ios::trunc) << text;
  }

  // Runs generate on the checkpoint and expects a clean refusal mentioning `needle`.
  static void expect_refused(const std::vector<std::string>& args, const std::string& needle) {
    const test::CliResult r = test::run_cli(args);
    ASSERT_TRUE(r.exited) << "crashed: " << r.err;
    EXPECT_NE(r.code, 0);
    const auto lines = r.err_lines();
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_EQ(lines[0].rfind("error: ", 0), 0u) << lines[0];
    EXPECT_NE(lines[0].find(needle), std::string::npos)
        << "'" << needle << "' not in: " << lines[0];
  }

  static void expect_generate_refused(const fs::path& ck, const std::string& needle) {
    expect_refused({"generate", "--model", ck.string(), "--prompt-ids", "1 2 3"}, needle);
  }

  test::TempDir dir_;
};

TEST_F(BadInput, TruncatedSafetensors) {
  const fs::path ck = checkpoint("truncated");
  fs::resize_file(ck / "model.safetensors", fs::file_size(ck / "model.safetensors") * 6 / 10);
  expect_generate_refused(ck, "data section (file truncated or offsets out of range)");
}

TEST_F(BadInput, SafetensorsShorterThanItsHeaderLength) {
  const fs::path ck = checkpoint("tiny");
  write(ck / "model.safetensors", "\x10\x00\x00");
  expect_generate_refused(ck, "truncated safetensors file (1 bytes, no header length)");
}

TEST_F(BadInput, HeaderOffsetsOutOfRange) {
  const fs::path ck = checkpoint("offsets");
  edit_header(ck, [](json& h) {
    auto& t = h["model.norm.weight"]["data_offsets"];
    t = {t[0].get<uint64_t>() + (uint64_t{1} << 40), t[1].get<uint64_t>() + (uint64_t{1} << 40)};
  });
  expect_generate_refused(
      ck, "'model.norm.weight': data_offsets [1099515629568, 1099515630080] point past the end");
}

TEST_F(BadInput, HeaderOffsetsOverlap) {
  const fs::path ck = checkpoint("overlap");
  edit_header(ck, [](json& h) {
    h["model.layers.0.post_attention_layernorm.weight"]["data_offsets"] =
        h["model.layers.0.input_layernorm.weight"]["data_offsets"];
  });
  expect_generate_refused(ck, "overlap");
}

TEST_F(BadInput, MissingTensor) {
  const fs::path ck = checkpoint("missing");
  edit_header(ck, [](json& h) { h.erase("model.layers.1.mlp.down_proj.weight"); });
  expect_generate_refused(ck, "missing tensor 'model.layers.1.mlp.down_proj.weight'");
}

TEST_F(BadInput, WrongShape) {
  const fs::path ck = checkpoint("shape");
  edit_header(ck, [](json& h) {
    h["model.layers.0.self_attn.k_proj.weight"]["shape"] = {256, 128};
  });
  expect_generate_refused(ck, "model.layers.0.self_attn.k_proj.weight' has shape [256, 128]");
}

TEST_F(BadInput, ByteCountDisagreesWithShape) {
  const fs::path ck = checkpoint("bytes");
  edit_header(ck, [](json& h) { h["model.norm.weight"]["shape"] = {255}; });
  expect_generate_refused(ck,
                          "'model.norm.weight': holds 512 bytes but its shape and BF16 need 510");
}

TEST_F(BadInput, UnknownDtype) {
  const fs::path ck = checkpoint("dtype");
  edit_header(ck, [](json& h) { h["model.norm.weight"]["dtype"] = "F64"; });
  expect_generate_refused(ck, "unsupported dtype 'F64'");
}

TEST_F(BadInput, HeaderNotJson) {
  const fs::path ck = checkpoint("header-json");
  std::string bytes = test::slurp(ck / "model.safetensors");
  bytes[8] = '#';
  write(ck / "model.safetensors", bytes);
  expect_generate_refused(ck, "malformed JSON");
}

TEST_F(BadInput, RopeScalingNotSupported) {
  const fs::path ck = checkpoint("yarn");
  edit_config(ck, [](json& c) { c["rope_scaling"] = {{"type", "longrope"}, {"factor", 4.0}}; });
  expect_generate_refused(ck, "field 'rope_scaling.type' is 'longrope'");
}

TEST_F(BadInput, SlidingWindowNotSupported) {
  const fs::path ck = checkpoint("sliding");
  edit_config(ck, [](json& c) { c["use_sliding_window"] = true; });
  expect_generate_refused(ck, "field 'use_sliding_window' is true");
}

TEST_F(BadInput, ActivationNotSupported) {
  const fs::path ck = checkpoint("gelu");
  edit_config(ck, [](json& c) { c["hidden_act"] = "gelu"; });
  expect_generate_refused(ck, "field 'hidden_act' is 'gelu'");
}

TEST_F(BadInput, ModelTypeNotSupported) {
  const fs::path ck = checkpoint("gemma2");
  edit_config(ck, [](json& c) { c["model_type"] = "gemma2"; });
  expect_generate_refused(ck, "'model_type' is 'gemma2', which is not supported");
}

TEST_F(BadInput, HeadsNotDivisible) {
  const fs::path ck = checkpoint("heads");
  edit_config(ck, [](json& c) { c["num_key_value_heads"] = 3; });
  expect_generate_refused(ck, "field 'num_key_value_heads' (3) must divide");
}

TEST_F(BadInput, ConfigNotJson) {
  const fs::path ck = checkpoint("config-json");
  write(ck / "config.json", "{\"model_type\": \"qwen2\",");
  expect_generate_refused(ck, "config.json: malformed JSON at byte 24");
}

TEST_F(BadInput, NoCheckpointThere) {
  expect_generate_refused(dir_ / "nothing-here", "nothing-here': no such directory");
}

TEST_F(BadInput, PromptIdOutsideVocabulary) {
  expect_refused(
      {"generate", "--model", test::golden("qwen2-tied-hd64").string(), "--prompt-ids", "1 2 2048"},
      "2048");
}

TEST_F(BadInput, PromptIdNotANumber) {
  expect_refused(
      {"generate", "--model", test::golden("qwen2-tied-hd64").string(), "--prompt-ids", "1 two 3"},
      "--prompt-ids");
}

TEST_F(BadInput, PromptLongerThanMaxSeqLen) {
  expect_refused({"generate", "--model", test::golden("qwen2-tied-hd64").string(), "--prompt-ids",
                  "1 2 3 4 5", "--max-seq-len", "4"},
                 "max_seq_len");
}

TEST_F(BadInput, GenerationPastMaxSeqLen) {
  expect_refused({"generate", "--model", test::golden("qwen2-tied-hd64").string(), "--prompt-ids",
                  "1 2 3", "--max-seq-len", "8", "--max-new-tokens", "10"},
                 "max_seq_len");
}

TEST_F(BadInput, MaxSeqLenBeyondTheModel) {
  expect_refused({"generate", "--model", test::golden("qwen2-tied-hd64").string(), "--prompt-ids",
                  "1", "--max-seq-len", "999999"},
                 "max_position_embeddings");
}

TEST_F(BadInput, UnknownPrecision) {
  expect_refused({"generate", "--model", test::golden("qwen2-tied-hd64").string(), "--prompt-ids",
                  "1", "--precision", "int4"},
                 "precision 'int4'");
}

TEST_F(BadInput, UnknownKvPrecision) {
  for (const char* cmd : {"generate", "plan"}) {
    std::vector<std::string> args = {cmd, "--model", test::golden("qwen2-tied-hd64").string(),
                                     "--kv-precision", "int4"};
    if (std::string(cmd) == "generate") args.insert(args.end(), {"--prompt-ids", "1"});
    expect_refused(args, "kv precision 'int4' (expected fp32, bf16 or bfp8)");
  }
}

TEST_F(BadInput, ReferenceNotJson) {
  write(dir_ / "ref.json", "{\"format\": ");
  expect_refused({"eval", "--model", test::golden("qwen2-tied-hd64").string(), "--reference",
                  (dir_ / "ref.json").string()},
                 "malformed JSON");
}

TEST_F(BadInput, ReferenceWrongFormat) {
  write(dir_ / "ref.json", R"({"format": "something-else", "cases": []})");
  expect_refused({"eval", "--model", test::golden("qwen2-tied-hd64").string(), "--reference",
                  (dir_ / "ref.json").string()},
                 "bringup-reference/1");
}

TEST_F(BadInput, ReferenceRowsDoNotMatch) {
  json ref = json::parse(test::slurp(test::golden("qwen2-tied-hd64") / "reference.json"));
  ref["cases"][0]["top5_ids"].erase(0);
  write(dir_ / "ref.json", ref.dump());
  expect_refused({"eval", "--model", test::golden("qwen2-tied-hd64").string(), "--reference",
                  (dir_ / "ref.json").string()},
                 "top5_ids");
}

TEST_F(BadInput, ReferenceForAnotherVocabulary) {
  // The gqa7 reference holds ids up to 4095; the tied checkpoint's vocabulary is 2048.
  expect_refused({"eval", "--model", test::golden("qwen2-tied-hd64").string(), "--reference",
                  (test::golden("qwen2-gqa7-small") / "reference.json").string()},
                 "vocabulary");
}

}  // namespace
}  // namespace bringup
