// The tokenizer against Hugging Face tokenizers itself (the Rust library through its Node.js
// binding, installed by `make deps` from npm) on a few hundred generated texts: random code points
// from many scripts, combining marks, emoji sequences, source code, odd whitespace, special-token
// fragments, and long documents.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "../cli/cli_runner.h"
#include "bringup/tokenizer.h"
#include "tokenizer/utf8.h"

namespace bringup {
namespace {

namespace fs = std::filesystem;

class TextGenerator {
 public:
  explicit TextGenerator(uint32_t seed) : rng_(seed) {}

  std::string random_scripts(int n) {
    // (first, last) code point ranges across scripts and symbol blocks.
    static const std::vector<std::pair<uint32_t, uint32_t>> kRanges = {
        {0x20, 0x7E},       {0xA0, 0xFF},       {0x100, 0x24F},     {0x250, 0x2AF},
        {0x370, 0x3FF},     {0x400, 0x4FF},     {0x530, 0x58F},     {0x5D0, 0x5EA},
        {0x600, 0x6FF},     {0x900, 0x97F},     {0x980, 0x9FF},     {0xB80, 0xBFF},
        {0xE00, 0xE5B},     {0xF00, 0xFDA},     {0x10A0, 0x10FF},   {0x1100, 0x11FF},
        {0x1200, 0x137F},   {0x13A0, 0x13F5},   {0x1780, 0x17F9},   {0x1800, 0x18AA},
        {0x2000, 0x206F},   {0x2190, 0x21FF},   {0x2200, 0x22FF},   {0x2500, 0x257F},
        {0x2600, 0x27BF},   {0x3000, 0x303F},   {0x3040, 0x309F},   {0x30A0, 0x30FF},
        {0x3400, 0x4DBF},   {0x4E00, 0x9FFF},   {0xAC00, 0xD7A3},   {0xFB50, 0xFDFF},
        {0xFE00, 0xFE0F},   {0xFF00, 0xFFEF},   {0x1D400, 0x1D7FF}, {0x1F300, 0x1F6FF},
        {0x1F900, 0x1F9FF}, {0x20000, 0x2A6DF}, {0xE0020, 0xE007F}, {0x0300, 0x036F},
    };
    std::string s;
    for (int i = 0; i < n; ++i) {
      if (pick(4) == 0) {
        s += " \n\t.,'"[pick(6)];
        continue;
      }
      const auto& [lo, hi] = kRanges[pick(kRanges.size())];
      utf8::append(s, lo + static_cast<uint32_t>(pick(hi - lo + 1)));
    }
    return s;
  }

  std::string combining() {
    static const char* kBases[] = {"a", "e", "o", "u", "n",  "c", "A",
                                   "I", "ا", "α", "и", "ᄀ", "i"};
    std::string s;
    for (int w = 0, words = 1 + pick(6); w < words; ++w) {
      for (int c = 0, chars = 1 + pick(5); c < chars; ++c) {
        s += kBases[pick(std::size(kBases))];
        for (int m = 0, marks = pick(4); m < marks; ++m) {
          utf8::append(s, 0x300 + static_cast<uint32_t>(pick(0x70)));
        }
        if (pick(5) == 0) utf8::append(s, 0x1161 + static_cast<uint32_t>(pick(20)));  // jamo
      }
      s += ' ';
    }
    return s;
  }

  std::string emoji() {
    static const char* kPieces[] = {"😀",
                                    "🤖",
                                    "👍🏽",
                                    "👨‍👩‍👧‍👦",
                                    "🏳️‍🌈",
                                    "🇫🇷",
                                    "🇯🇵",
                                    "1️⃣",
                                    "❤️",
                                    "🧑🏿‍🚀",
                                    "🫠",
                                    "☕",
                                    "✈️",
                                    "🐈‍⬛",
                                    "‍",
                                    "️",
                                    "🏴󠁧󠁢󠁳󠁣󠁴󠁿"};
    std::string s;
    for (int i = 0, n = 1 + pick(10); i < n; ++i) {
      s += kPieces[pick(std::size(kPieces))];
      if (pick(3) == 0) s += " ";
      if (pick(6) == 0) s += "word";
    }
    return s;
  }

  std::string code() {
    static const char* kSnippets[] = {
        "int main(int argc, char** argv) {\n  return 0;\n}\n",
        "def f(x):\n\tif x >= 10:\n\t\treturn x ** 2  # square\n\treturn -1\n",
        "{\"key\": [1, 2.5e-3, null, true], \"k2\": \"v\\u00e9\"}\r\n",
        "for (auto& [k, v] : map) { std::cout << k << \": \" << v << '\\n'; }",
        "    x = y->z[i++] != 0 && !flag || (a << 3) >>= 2;\n\n\n",
        "SELECT name, COUNT(*) FROM t WHERE id IN (1,2,3) GROUP BY name;",
        "<div class=\"a\">&nbsp;</div>\n<!-- comment -->",
        "fn main() { let v: Vec<u8> = vec![0xFF; 16]; println!(\"{:?}\", v); }",
        "$ ls -la | grep '^d' > out.txt 2>&1 && echo \"done\"\n",
    };
    std::string s;
    for (int i = 0, n = 1 + pick(4); i < n; ++i) s += kSnippets[pick(std::size(kSnippets))];
    return s;
  }

  std::string whitespace() {
    static const char* kSpaces[] = {" ",      "  ",     "\t",     "\n",     "\r\n",
                                    "\r",     "\u00a0", "\u3000", "\u2028", "\u2009",
                                    "\u200b", "\u180e", "\u0085", "\v",     "\f"};
    std::string s;
    for (int i = 0, n = 2 + pick(20); i < n; ++i) {
      s += kSpaces[pick(std::size(kSpaces))];
      if (pick(3) == 0) s += pick(2) ? "word" : "42";
    }
    return s;
  }

  std::string contractions_and_numbers() {
    static const char* kPieces[] = {"don't", "DON'T",   "I'Ll",   "we'RE",   "'s",
                                    "'S",    "they'VE", "it'd",   "'m",      "12345678901234",
                                    "٣٤٥",   "३४५",     "３４５", "3.14159", "1,000,000",
                                    "x²",    "½",       "Ⅻ",      "no'",     "'"};
    std::string s;
    for (int i = 0, n = 1 + pick(8); i < n; ++i) {
      s += kPieces[pick(std::size(kPieces))];
      s += pick(3) ? " " : "";
    }
    return s;
  }

  std::string specials() {
    static const char* kPieces[] = {
        "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_", "start|>", "<|", "|>", "user",
        "\n",           " ",          "x<|im_end|>y"};
    std::string s;
    for (int i = 0, n = 1 + pick(8); i < n; ++i) s += kPieces[pick(std::size(kPieces))];
    return s;
  }

  int pick(size_t n) {
    return static_cast<int>(std::uniform_int_distribution<size_t>(0, n - 1)(rng_));
  }

 private:
  std::mt19937 rng_;
};

TEST(TokenizerVersusHuggingFace, RandomTexts) {
  const fs::path data(BRINGUP_TEST_DATA);
  const fs::path script = fs::path(BRINGUP_SOURCE_DIR) / "tests/reference-js/hf_tokenize.js";
  ASSERT_TRUE(
      fs::exists(fs::path(BRINGUP_SOURCE_DIR) / "tests/reference-js/node_modules/tokenizers"))
      << "run `make deps` (npm ci in tests/reference-js) to install the reference tokenizer";

  TextGenerator gen(2024);
  std::vector<std::string> texts;
  for (int i = 0; i < 80; ++i) texts.push_back(gen.random_scripts(1 + gen.pick(60)));
  for (int i = 0; i < 50; ++i) texts.push_back(gen.combining());
  for (int i = 0; i < 50; ++i) texts.push_back(gen.emoji());
  for (int i = 0; i < 40; ++i) texts.push_back(gen.code());
  for (int i = 0; i < 50; ++i) texts.push_back(gen.whitespace());
  for (int i = 0; i < 40; ++i) texts.push_back(gen.contractions_and_numbers());
  for (int i = 0; i < 40; ++i) texts.push_back(gen.specials());
  // Long documents: slices of the play, and a mixture of everything.
  const std::string play = test::slurp(data / "tinyshakespeare.txt");
  for (size_t start : {size_t{0}, size_t{400000}, size_t{900000}})
    texts.push_back(play.substr(start, 60000));
  std::string mix;
  for (int i = 0; i < 200; ++i)
    mix += gen.random_scripts(20) + gen.code() + gen.emoji() + gen.whitespace();
  texts.push_back(mix);

  const fs::path dir = fs::temp_directory_path() / ("bringup-tok-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    std::ofstream out(dir / "texts.jsonl");
    for (const auto& t : texts) out << nlohmann::json(t).dump() << "\n";
  }
  const std::string cmd = "node " + test::shell_quote(script.string()) + " " +
                          test::shell_quote((data / "tokenizer/tokenizer.json").string()) + " < " +
                          test::shell_quote((dir / "texts.jsonl").string()) + " > " +
                          test::shell_quote((dir / "hf.jsonl").string());
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream in(dir / "hf.jsonl");
  const Tokenizer tok = Tokenizer::load(data / "tokenizer");
  size_t i = 0, mismatches = 0;
  for (std::string line; std::getline(in, line) && i < texts.size(); ++i) {
    const auto want = nlohmann::json::parse(line);
    const auto ids = tok.encode(texts[i]);
    const bool ids_ok = ids == want["ids"].get<std::vector<int32_t>>();
    const bool text_ok = tok.decode(ids) == want["decoded"].get<std::string>();
    if (!ids_ok || !text_ok) {
      if (++mismatches <= 5) {
        ADD_FAILURE() << "text " << i << " " << nlohmann::json(texts[i].substr(0, 200)).dump()
                      << (ids_ok ? "" : " ids differ") << (text_ok ? "" : " decoded differs");
      }
    }
  }
  EXPECT_EQ(i, texts.size());
  EXPECT_EQ(mismatches, 0u) << "of " << texts.size() << " texts";
  fs::remove_all(dir);
}

}  // namespace
}  // namespace bringup
