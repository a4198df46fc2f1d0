// generate --prompts-jsonl: many prompts generated together in batched steps give, for each,
// exactly what generating it alone gives (greedy), in input order; and its bad inputs.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../model/model_test_util.h"
#include "cli_runner.h"

namespace bringup {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<int32_t> ids_of(const std::string& text) {
  std::vector<int32_t> ids;
  std::istringstream in(text);
  for (int32_t id; in >> id;) ids.push_back(id);
  return ids;
}

// 16 prompts of lengths 1..76 with budgets of 3..18 new tokens, on a checkpoint without a
// tokenizer (ids in and out).
void check_ids_batch(const std::string& name, const std::string& precision) {
  test::TempDir dir("batch-cli-" + name + precision);
  const std::string model = test::golden(name).string();
  std::vector<std::vector<int32_t>> prompts;
  std::vector<int64_t> budgets;
  {
    std::ofstream jsonl(dir / "prompts.jsonl");
    for (int i = 0; i < 16; ++i) {
      std::vector<int32_t> p(1 + i * 5);
      for (size_t j = 0; j < p.size(); ++j) p[j] = static_cast<int32_t>((j * 31 + i * 97) % 1000);
      prompts.push_back(p);
      budgets.push_back(3 + i);
      jsonl << nlohmann::json{{"prompt_ids", p}, {"max_new_tokens", budgets.back()}}.dump() << "\n";
    }
  }
  const test::CliResult batch =
      test::run_cli({"generate", "--model", model, "--precision", precision, "--prompts-jsonl",
                     (dir / "prompts.jsonl").string(), "--temperature", "0"});
  ASSERT_TRUE(batch.exited && batch.code == 0) << batch.err;
  const std::vector<std::string> lines = lines_of(batch.out);
  ASSERT_EQ(lines.size(), 16u) << batch.out;
  for (size_t i = 0; i < 16; ++i) {
    const nlohmann::json j = nlohmann::json::parse(lines[i]);
    EXPECT_EQ(j["index"], i) << "in input order";
    EXPECT_EQ(j["prompt_tokens"], prompts[i].size());
    const std::vector<int32_t> got = j["ids"].get<std::vector<int32_t>>();
    std::string ids;
    for (int32_t id : prompts[i]) ids += std::to_string(id) + " ";
    const test::CliResult alone =
        test::run_cli({"generate", "--model", model, "--precision", precision, "--prompt-ids", ids,
                       "--max-new-tokens", std::to_string(budgets[i]), "--temperature", "0"});
    ASSERT_TRUE(alone.exited && alone.code == 0) << alone.err;
    EXPECT_EQ(got, ids_of(alone.out)) << "prompt " << i;
    EXPECT_EQ(j["finish_reason"],
              static_cast<int64_t>(got.size()) == budgets[i] ? "length" : "stop");
  }
}

TEST(BatchCli, Qwen2MatchesGeneratingAlone) {
  check_ids_batch("qwen2-gqa7-small", "bfp8-mixed");
}

TEST(BatchCli, LlamaMatchesGeneratingAlone) {
  check_ids_batch("llama-gqa4-small", "bf16");
}

// Text prompts through the shipped model's tokenizer, under a KV budget that holds only a few
// requests at a time (the rest wait for blocks).
TEST(BatchCli, TextPromptsUnderASmallBudget) {
  test::TempDir dir("batch-cli-text");
  const std::string model =
      (fs::path(BRINGUP_SOURCE_DIR) / "models/bringup/tiny-shakespeare-qwen2").string();
  const std::vector<std::string> prompts = {"ROMEO:", "JULIET:\nO Romeo", "To be, or not",
                                            "KING HENRY:", "First Citizen:\nBefore we proceed"};
  {
    std::ofstream jsonl(dir / "prompts.jsonl");
    for (const std::string& p : prompts) jsonl << nlohmann::json{{"prompt", p}}.dump() << "\n";
  }
  const test::CliResult batch = test::run_cli({"generate", "--model", model, "--prompts-jsonl",
                                               (dir / "prompts.jsonl").string(), "--temperature",
                                               "0", "--max-new-tokens", "24", "--kv-budget", "96"});
  ASSERT_TRUE(batch.exited && batch.code == 0) << batch.err;
  const std::vector<std::string> lines = lines_of(batch.out);
  ASSERT_EQ(lines.size(), prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    const test::CliResult alone =
        test::run_cli({"generate", "--model", model, "--prompt", prompts[i], "--temperature", "0",
                       "--max-new-tokens", "24"});
    ASSERT_TRUE(alone.exited && alone.code == 0) << alone.err;
    EXPECT_EQ(nlohmann::json::parse(lines[i])["text"].get<std::string>() + "\n", alone.out);
  }
}

TEST(BatchCli, BadInputsNameTheLineAndField) {
  test::TempDir dir("batch-cli-bad");
  const std::string model = test::golden("qwen2-tied-hd64").string();
  const struct {
    std::string content, needle;
  } cases[] = {
      {"{\"prompt_ids\": [1, 2]}\n{\"prompt_ids\": [1,", "line 2: malformed JSON"},
      {"[1, 2]", "line 1: expected a JSON object"},
      {"{\"prompt_ids\": []}", "field 'prompt_ids' must be a non-empty array"},
      {"{\"prompt_ids\": [1, -2]}", "field 'prompt_ids' must hold non-negative integer ids"},
      {"{\"prompt_ids\": [1], \"max_new_tokens\": 0}", "field 'max_new_tokens' must be a positive"},
      {"{\"prompt_ids\": [1], \"temperature\": 0}", "unknown field 'temperature'"},
      {"{\"prompt\": \"hi\"}", "field 'prompt' needs the model's tokenizer.json"},
      {"{\"max_new_tokens\": 3}", "give exactly one of 'prompt' and 'prompt_ids'"},
      {"\n\n", "holds no prompts"},
      {"{\"prompt_ids\": [99999]}", "outside the model's vocabulary"},
      {"{\"prompt_ids\": [1], \"max_new_tokens\": 100000}", "exceeds max_seq_len"},
  };
  for (const auto& c : cases) {
    std::ofstream(dir / "bad.jsonl") << c.content;
    const test::CliResult r = test::run_cli({"generate", "--model", model, "--prompts-jsonl",
                                             (dir / "bad.jsonl").string(), "--max-seq-len", "256"});
    ASSERT_TRUE(r.exited) << "crashed on " << c.content;
    EXPECT_NE(r.code, 0) << c.content;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << c.content << " -> " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  const test::CliResult missing =
      test::run_cli({"generate", "--model", (dir / "no-such-model").string(), "--prompt", "hello"});
  EXPECT_NE(missing.err.find("no such directory"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace bringup
