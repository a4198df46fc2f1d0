// Every input the fuzzers once failed on (tests/data/fuzz-regressions/<target>/), and the seed
// corpora, replayed through the same entry points: each must now be handled without a crash.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "../../fuzz/entries.h"

namespace bringup {
namespace {

namespace fs = std::filesystem;

void replay(const fs::path& dir, void (*entry)(const uint8_t*, size_t), int* count) {
  if (!fs::exists(dir)) return;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string bytes = ss.str();
    SCOPED_TRACE(e.path().string());
    entry(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    ++*count;
  }
}

TEST(FuzzRegressions, ReplayWithoutCrashing) {
  const struct {
    const char* name;
    void (*entry)(const uint8_t*, size_t);
  } targets[] = {{"safetensors", fuzz::safetensors},
                 {"config", fuzz::config},
                 {"tokenizer_load", fuzz::tokenizer_load},
                 {"tokenizer_encode", fuzz::tokenizer_encode},
                 {"chat_template", fuzz::chat_template},
                 {"chat_template_parse", fuzz::chat_template_parse},
                 {"reference", fuzz::reference},
                 {"openai_request", fuzz::openai_request},
                 {"gguf", fuzz::gguf}};
  int regressions = 0, seeds = 0;
  for (const auto& t : targets) {
    replay(fs::path(BRINGUP_TEST_DATA) / "fuzz-regressions" / t.name, t.entry, &regressions);
    replay(fs::path(BRINGUP_SOURCE_DIR) / "fuzz/corpus" / t.name, t.entry, &seeds);
  }
  EXPECT_GE(regressions, 1);
  EXPECT_GE(seeds, 50);
}

}  // namespace
}  // namespace bringup
