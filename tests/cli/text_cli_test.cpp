// The text commands: tokenize / detokenize, generate with text and chat prompts, chat with a
// kept cache, and their bad inputs.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../model/model_test_util.h"
#include "cli_runner.h"
#include "tokenizer/utf8.h"

namespace bringup {
namespace {

namespace fs = std::filesystem;

class TextCli : public ::testing::Test {
 protected:
  TextCli() : dir_("text-cli") {
    // A small random checkpoint with the full Qwen2 vocabulary and the tokenizer beside it.
    model_ = dir_ / "model";
    SynthOptions o;
    o.config = test::small_config();
    o.config.vocab_size = 151936;
    o.config.hidden_size = 64;
    o.config.num_attention_heads = 2;
    o.config.num_key_value_heads = 1;
    o.config.intermediate_size = 128;
    o.config.tie_word_embeddings = true;
    o.shard_bytes = 0;
    write_synthetic_checkpoint(o, model_);
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) {
      fs::copy_file(fs::path(BRINGUP_TEST_DATA) / "tokenizer" / f, model_ / f);
    }
  }
  std::string model() const { return model_.string(); }
  void expect_error(const std::vector<std::string>& args, const std::string& needle,
                    const std::string& in = "") {
    const test::CliResult r = test::run_cli(args, in);
    ASSERT_TRUE(r.exited) << "crashed: " << r.err;
    EXPECT_NE(r.code, 0);
    const auto lines = r.err_lines();
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_NE(lines[0].find(needle), std::string::npos) << lines[0];
  }
  test::TempDir dir_;
  fs::path model_;
};

TEST_F(TextCli, TokenizeAndDetokenize) {
  auto r = test::run_cli({"tokenize", "--model", model(), "Hello world"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "9707 1879\n");
  r = test::run_cli({"detokenize", "--model", model(), "9707 1879"});
  EXPECT_EQ(r.out, "Hello world");
  r = test::run_cli({"tokenize", "--model", model(), "--jsonl"}, "\"a b\"\n\"\\u4f60\\u597d\"\n");
  EXPECT_EQ(r.out, "[64,293]\n[108386]\n");
  r = test::run_cli({"detokenize", "--model", model(), "--jsonl"}, "[9707]\n[11162, 97]\n");
  EXPECT_EQ(r.out, "\"Hello\"\n\" \xEF\xBF\xBD\"\n");  // a broken character becomes U+FFFD
}

TEST_F(TextCli, GenerateStreamsTextAndHonoursStopStrings) {
  auto r = test::run_cli({"generate", "--model", model(), "--prompt", "Once upon a time",
                          "--max-new-tokens", "12", "--temperature", "0", "--precision", "fp32"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(utf8::first_invalid(r.out), std::string::npos);
  EXPECT_NE(r.err.find("prompt 4 tokens, generated 12"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("time to first token"), std::string::npos);
  // The same prompt as ids gives the same continuation (greedy).
  auto ids = test::run_cli({"generate", "--model", model(), "--prompt-ids", "12522 5193 264 882",
                            "--max-new-tokens", "12", "--temperature", "0", "--precision", "fp32"});
  EXPECT_EQ(ids.out, r.out);
  // Sampling with a seed repeats.
  auto s1 = test::run_cli({"generate", "--model", model(), "--prompt", "Hi", "--max-new-tokens",
                           "10", "--temperature", "0.9", "--top-k", "20", "--seed", "5"});
  auto s2 = test::run_cli({"generate", "--model", model(), "--prompt", "Hi", "--max-new-tokens",
                           "10", "--temperature", "0.9", "--top-k", "20", "--seed", "5"});
  EXPECT_EQ(s1.out, s2.out);
  // Stop at a string taken from the greedy output itself.
  const std::string text = r.out.substr(0, r.out.size() - 1);
  ASSERT_GE(text.size(), 6u);
  const std::string stop = text.substr(text.size() / 2, 3);
  auto st = test::run_cli({"generate", "--model", model(), "--prompt", "Once upon a time",
                           "--max-new-tokens", "12", "--temperature", "0", "--precision", "fp32",
                           "--stop", stop});
  EXPECT_EQ(st.out, text.substr(0, text.find(stop)) + "\n");
}

TEST_F(TextCli, ChatKeepsTheCacheBetweenTurns) {
  auto r = test::run_cli({"chat", "--model", model(), "--max-new-tokens", "8", "--temperature", "0",
                          "--system", "Be brief."},
                         "Hello there\nAnd again\n");
  ASSERT_EQ(r.code, 0) << r.err;
  // Two turns; the second prefills only what follows the cached conversation.
  std::vector<std::pair<int, int>> turns;
  for (size_t at = r.err.find("[prefilled "); at != std::string::npos;
       at = r.err.find("[prefilled ", at + 1)) {
    int fresh = 0, total = 0;
    std::sscanf(r.err.c_str() + at, "[prefilled %d new of %d tokens", &fresh, &total);
    turns.push_back({fresh, total});
  }
  ASSERT_EQ(turns.size(), 2u) << r.err;
  EXPECT_EQ(turns[0].first, turns[0].second);
  EXPECT_LT(turns[1].first, turns[1].second / 2);
}

TEST_F(TextCli, PromptIdsWorkWithoutATokenizer) {
  auto r = test::run_cli({"generate", "--model", test::golden("qwen2-gqa7-small").string(),
                          "--prompt-ids", "1 2 3", "--max-new-tokens", "4"});
  ASSERT_EQ(r.code, 0) << r.err;
  int a, b, c, d;
  EXPECT_EQ(std::sscanf(r.out.c_str(), "%d %d %d %d", &a, &b, &c, &d), 4) << r.out;
}

TEST_F(TextCli, BadInputs) {
  expect_error({"generate", "--model", test::golden("qwen2-gqa7-small").string(), "--prompt", "hi"},
               "tokenizer.json");
  std::ofstream(model_ / "bad.txt") << "caf\xe9 au lait";
  expect_error({"generate", "--model", model(), "--prompt-file", (model_ / "bad.txt").string()},
               "not valid UTF-8");
  expect_error({"detokenize", "--model", model(), "9707 999999"},
               "outside the tokenizer's vocabulary");
  expect_error({"detokenize", "--model", model(), "--jsonl"}, "stdin line 1", "[1, \"x\"]\n");
  expect_error({"tokenize", "--model", model(), "--jsonl"}, "stdin line 1", "not json\n");
  expect_error({"generate", "--model", model(), "--prompt", "a", "--prompt-ids", "1"},
               "exactly one");
  expect_error({"generate", "--model", model(), "--prompt", "a", "--top-p", "0"}, "--top-p");
  // A malformed tokenizer.json, and a chat template with an unsupported construct.
  std::ofstream(model_ / "tokenizer.json", std::ios::trunc) << "{\"model\": [";
  expect_error({"tokenize", "--model", model(), "x"}, "tokenizer.json: malformed JSON");
  fs::copy_file(fs::path(BRINGUP_TEST_DATA) / "tokenizer/tokenizer.json", model_ / "tokenizer.json",
                fs::copy_options::overwrite_existing);
  auto config = nlohmann::json::parse(test::slurp(model_ / "tokenizer_config.json"));
  config["chat_template"] = "{% macro greet() %}hi{% endmacro %}{{ greet() }}";
  std::ofstream(model_ / "tokenizer_config.json", std::ios::trunc) << config.dump();
  expect_error({"generate", "--model", model(), "--prompt", "a", "--chat"},
               "unsupported construct 'macro'");
}

}  // namespace
}  // namespace bringup
