// The Qwen2 tokenizer against Hugging Face's outputs (shared cases), UTF-8 handling and
// streaming.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "bringup/error.h"
#include "bringup/tokenizer.h"
#include "tokenizer/utf8.h"

namespace bringup {
namespace {

const std::filesystem::path kDir = std::filesystem::path(BRINGUP_TEST_DATA) / "tokenizer";

const Tokenizer& qwen2() {
  static const Tokenizer t = Tokenizer::load(kDir);
  return t;
}

TEST(Tokenizer, MatchesHuggingFaceOnEverySharedCase) {
  std::ifstream in(kDir / "cases.jsonl");
  int cases = 0;
  for (std::string line; std::getline(in, line);) {
    const auto c = nlohmann::json::parse(line);
    const std::string text = c["text"];
    const auto want = c["ids"].get<std::vector<int32_t>>();
    SCOPED_TRACE(text.substr(0, 60));
    EXPECT_EQ(qwen2().encode(text), want);
    EXPECT_EQ(qwen2().decode(want), c["decoded"].get<std::string>());
    ++cases;
  }
  EXPECT_GE(cases, 49);
}

TEST(Tokenizer, SpecialTokensAndConfig) {
  const Tokenizer& t = qwen2();
  EXPECT_EQ(t.vocab_size(), 151646);
  EXPECT_EQ(t.token_id("<|im_end|>"), 151645);
  EXPECT_TRUE(t.is_special(151643));
  EXPECT_FALSE(t.is_special(9707));
  EXPECT_EQ(t.eos_token(), "<|im_end|>");
  EXPECT_NE(t.chat_template().find("<|im_start|>"), std::string::npos);
  EXPECT_EQ(t.encode("a<|im_start|><|im_end|>b"), (std::vector<int32_t>{64, 151644, 151645, 65}));
}

TEST(Tokenizer, RejectsInvalidUtf8AndUnknownIds) {
  EXPECT_THROW(qwen2().encode("abc\xff"), Error);
  EXPECT_THROW(qwen2().encode("\xed\xa0\x80"), Error);  // a surrogate
  const std::vector<int32_t> bad = {151646};
  EXPECT_THROW(qwen2().decode(bad), Error);
  const std::vector<int32_t> neg = {-1};
  EXPECT_THROW(qwen2().decode(neg), Error);
}

TEST(Tokenizer, DecodeReplacesBrokenBytesLikeRust) {
  // "🤖" is one character split over byte tokens; without its last token its first bytes are
  // one U+FFFD.
  const std::vector<int32_t> ids = qwen2().encode(" 🤖");
  ASSERT_GT(ids.size(), 1u);
  EXPECT_EQ(qwen2().decode(std::span(ids).first(ids.size() - 1)), " \xEF\xBF\xBD");
  EXPECT_EQ(utf8::lossy("a\xC0\x80"
                        "b"),
            "a\xEF\xBF\xBD\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(utf8::lossy("\xE2\x82"
                        "A"),
            "\xEF\xBF\xBD"
            "A");
  EXPECT_EQ(utf8::lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(StreamDecoder, NeverSplitsACharacter) {
  const std::string text =
      "emoji 😀🤖 and 你好，世界 and é and 👨‍👩‍👧‍👦!";
  const std::vector<int32_t> ids = qwen2().encode(text);
  StreamDecoder stream(qwen2());
  std::string out;
  bool saw_held_back = false;
  for (int32_t id : ids) {
    const std::string piece = stream.push(id);
    EXPECT_EQ(utf8::first_invalid(piece), std::string::npos) << "invalid UTF-8 written";
    saw_held_back |= piece.empty();
    out += piece;
  }
  out += stream.flush();
  EXPECT_EQ(out, text);
  EXPECT_TRUE(saw_held_back);  // some character did span tokens
}

TEST(Tokenizer, MissingOrMalformedFilesAreClearErrors) {
  const auto dir = std::filesystem::temp_directory_path() / "bringup-tok-bad";
  std::filesystem::create_directories(dir);
  EXPECT_THROW(Tokenizer::load(dir), Error);
  std::ofstream(dir / "tokenizer.json") << "{\"model\": ";
  try {
    Tokenizer::load(dir);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.json"), std::string::npos);
  }
  std::ofstream(dir / "tokenizer.json", std::ios::trunc)
      << R"({"model": {"type": "Unigram", "vocab": []}})";
  EXPECT_THROW(Tokenizer::load(dir), Error);
  std::filesystem::remove_all(dir);
}

// add_bos_token (LlamaTokenizerFast's flag; GGUF's tokenizer.ggml.add_bos_token arrives as it):
// a text encoded with its special tokens starts with the BOS id, one encoded without does not,
// and a flag whose bos_token is no added token is refused by name.
TEST(Tokenizer, AddBosTokenPrependsTheBosIdToPrompts) {
  std::ifstream in(kDir / "tokenizer.json"), cin(kDir / "tokenizer_config.json");
  const std::string tj((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  nlohmann::json cfg = nlohmann::json::parse(cin);
  EXPECT_FALSE(qwen2().adds_bos());
  EXPECT_EQ(qwen2().encode("Hello", true), qwen2().encode("Hello"));
  cfg["add_bos_token"] = true;
  cfg["bos_token"] = "<|endoftext|>";
  const Tokenizer t = Tokenizer::parse(tj, cfg.dump(), "tok");
  EXPECT_TRUE(t.adds_bos());
  std::vector<int32_t> want = {151643};
  for (int32_t id : qwen2().encode("Hello world")) want.push_back(id);
  EXPECT_EQ(t.encode("Hello world", true), want);
  EXPECT_EQ(t.encode("Hello world"), qwen2().encode("Hello world"));
  cfg["bos_token"] = nullptr;
  try {
    (void)Tokenizer::parse(tj, cfg.dump(), "tok");
    ADD_FAILURE() << "add_bos_token without a bos_token was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("add_bos_token"), std::string::npos) << e.what();
  }
}

// An added token's id past the id limit is refused by value: 2^32 + 5 must not wrap to id 5, and
// a huge id must not size the id tables.
TEST(Tokenizer, AddedTokenIdOutOfRangeIsRefused) {
  std::ifstream in(kDir / "tokenizer.json");
  nlohmann::json j = nlohmann::json::parse(in);
  for (const int64_t id : {(int64_t{1} << 32) + 5, Tokenizer::kMaxTokenId, int64_t{-1}}) {
    j["added_tokens"][0]["id"] = id;
    try {
      Tokenizer::parse(j.dump(), "", "tok.json");
      ADD_FAILURE() << "id " << id << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("id"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(std::to_string(id)), std::string::npos) << e.what();
    }
  }
}

// A Sequence normalizer nested 100000 deep once overflowed the stack of the recursive walk over
// it; JSON nested deeper than serde_json's 128 levels is now refused when it is parsed.
TEST(Tokenizer, DeeplyNestedJsonIsRefused) {
  std::ifstream in(kDir / "tokenizer.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  std::string text = j.dump();
  const std::string key = "\"normalizer\":{\"type\":\"NFC\"}";
  const size_t at = text.find(key);
  ASSERT_NE(at, std::string::npos);
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += R"({"type":"Sequence","normalizers":[)";
  deep += R"({"type":"NFC"})";
  for (int i = 0; i < 100000; ++i) deep += "]}";
  text.replace(at, key.size(), "\"normalizer\":" + deep);
  try {
    Tokenizer::parse(text, "", "tok.json");
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("levels deep (at most 128)"), std::string::npos)
        << e.what();
  }
}

// A pre-tokenizer regex that backtracks past PCRE2's match limit is an error, not a silently
// different split of the rest of the text.
TEST(Tokenizer, RegexMatchLimitIsAnError) {
  std::ifstream in(kDir / "tokenizer.json");
  nlohmann::json j = nlohmann::json::parse(in);
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"},
         {"pattern", {{"Regex", "(x+x+)+y"}}},
         {"behavior", "Isolated"},
         {"invert", false}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  const Tokenizer t = Tokenizer::parse(j.dump(), "", "tok.json");
  EXPECT_EQ(t.decode(t.encode("xxy z")), "xxy z");
  try {
    t.encode(std::string(40, 'x') + "z y");
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("match limit"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bringup
