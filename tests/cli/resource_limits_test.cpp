// Inputs sized to exhaust memory or time are refused (or handled) within bounds, with a clear
// message: a checkpoint larger than the machine's memory, a 100 MB tokenizer input, a reference
// with hundreds of thousands of steps. (Deeply nested template loops: chat_template_test.)
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../model/model_test_util.h"
#include "cli_runner.h"
#include "models/family.h"
#include "models/synth.h"

namespace bringup {
namespace {

namespace fs = std::filesystem;

void expect_refused(const test::CliResult& r, const std::string& needle) {
  ASSERT_TRUE(r.exited) << "crashed: " << r.err;
  EXPECT_NE(r.code, 0);
  const auto lines = r.err_lines();
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_NE(lines[0].find(needle), std::string::npos) << lines[0];
}

// This machine's memory (MemTotal), so that "larger than memory" holds on any machine.
uint64_t machine_memory() {
  std::ifstream in("/proc/meminfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("MemTotal:", 0) == 0) return std::stoull(line.substr(9)) * 1024;
  }
  return uint64_t{64} << 30;
}

// A valid header for tensors of twice this machine's memory, in a sparse file of that size:
// nothing is read or allocated before the memory check refuses it.
TEST(ResourceLimits, CheckpointLargerThanMemory) {
  test::TempDir dir("huge-model");
  ModelConfig c = test::small_config();
  c.vocab_size = 262144;
  c.hidden_size = 16384;
  c.intermediate_size = 65536;
  c.num_attention_heads = 128;
  c.num_key_value_heads = 8;
  c.head_dim = 128;
  c.tie_word_embeddings = true;
  nlohmann::json header;
  uint64_t offset = 0;
  for (c.num_hidden_layers = 8; offset <= 2 * machine_memory(); c.num_hidden_layers *= 2) {
    header = nlohmann::json::object();
    offset = 0;
    for (const ExpectedTensor& t : expected_tensors(c)) {
      uint64_t n = 2;
      for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
      header[t.name] = {
          {"dtype", "BF16"}, {"shape", t.shape}, {"data_offsets", {offset, offset + n}}};
      offset += n;
    }
  }
  c.num_hidden_layers /= 2;  // the count the last header was made for
  std::ofstream(dir / "config.json") << model_config_json(c);
  const std::string text = header.dump();
  {
    std::ofstream out(dir / "model.safetensors", std::ios::binary);
    const uint64_t len = text.size();
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((len >> (8 * i)) & 0xff));
    out << text;
  }
  fs::resize_file(dir / "model.safetensors", 8 + text.size() + offset);  // sparse
  ASSERT_GT(offset, 2 * machine_memory());
  const auto r = test::run_cli(
      {"generate", "--model", dir.path().string(), "--prompt-ids", "1", "--precision", "bf16"});
  expect_refused(r, "of memory are available");
}

TEST(ResourceLimits, HundredMegabyteTokenizerInput) {
  test::TempDir dir("big-text");
  const fs::path tok = fs::path(BRINGUP_TEST_DATA) / "tokenizer";
  std::string text;
  text.reserve(size_t{100} << 20);
  const std::string play = test::slurp(fs::path(BRINGUP_TEST_DATA) / "tinyshakespeare.txt");
  while (text.size() < (size_t{100} << 20)) text += play;
  expect_refused(test::run_cli({"tokenize", "--model", tok.string()}, text),
                 "MiB limit per call");  // refused before it is all read
}

TEST(ResourceLimits, ReferenceWithTooManySteps) {
  test::TempDir dir("big-ref");
  nlohmann::json c = {{"name", "huge"}, {"prompt_ids", {1}}};
  const int64_t steps = 300000;
  c["reference_ids"] = std::vector<int>(steps, 1);
  c["top5_ids"] = std::vector<std::vector<int>>(steps, {1, 2, 3, 4, 5});
  c["top5_logits"] = std::vector<std::vector<int>>(steps, {5, 4, 3, 2, 1});
  std::ofstream(dir / "ref.json")
      << nlohmann::json({{"format", "bringup-reference/1"}, {"cases", {c}}}).dump();
  expect_refused(test::run_cli({"eval", "--model", test::golden("qwen2-tied-hd64").string(),
                                "--reference", (dir / "ref.json").string()}),
                 "at most");
  // A reference file too large to parse safely is refused by its size.
  {
    std::ofstream big(dir / "big.json");
    big << "{\"format\": \"bringup-reference/1\", \"pad\": \"";
    big << std::string(size_t{70} << 20, 'x') << "\"}";
  }
  expect_refused(test::run_cli({"eval", "--model", test::golden("qwen2-tied-hd64").string(),
                                "--reference", (dir / "big.json").string()}),
                 "MiB limit");
}

}  // namespace
}  // namespace bringup
