// The catalogue of malformed inputs in tests/data/bad-inputs (one file per problem, named after
// it; manifest.json says what the error must name): the CLI refuses each with a one-line error and
// a non-zero exit code, and never crashes. Under `make test-sanitize` this also runs with ASan and
// UBSan.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../model/model_test_util.h"
#include "cli_runner.h"

namespace bringup {
namespace {

namespace fs = std::filesystem;
const fs::path kCatalogue = fs::path(BRINGUP_TEST_DATA) / "bad-inputs";

// A fresh copy of the valid base checkpoint (with its small tokenizer) in dir.
void copy_base(const fs::path& dir) {
  fs::create_directories(dir);
  for (const char* f :
       {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"}) {
    fs::copy_file(kCatalogue / "base" / f, dir / f);
  }
}

struct Invocation {
  std::vector<std::string> args;
  std::string stdin_text;
};

Invocation setup(const std::string& kind, const fs::path& file, const fs::path& dir) {
  const std::string d = dir.string();
  if (kind == "safetensors" || kind == "config" || kind == "generation_config") {
    copy_base(dir);
    const std::string target = kind == "safetensors" ? "model.safetensors" : kind + ".json";
    fs::copy_file(file, dir / target, fs::copy_options::overwrite_existing);
    return {{"generate", "--model", d, "--prompt-ids", "1 2", "--max-new-tokens", "1"}, ""};
  }
  if (kind == "index") {
    copy_base(dir);
    fs::remove(dir / "model.safetensors");
    for (const char* f : {"part-1.safetensors", "part-2.safetensors"}) {
      fs::copy_file(kCatalogue / "base/shards" / f, dir / f);
    }
    fs::copy_file(file, dir / "model.safetensors.index.json");
    return {{"generate", "--model", d, "--prompt-ids", "1 2", "--max-new-tokens", "1"}, ""};
  }
  if (kind == "tokenizer") {
    fs::create_directories(dir);
    fs::copy_file(file, dir / "tokenizer.json");
    return {{"tokenize", "--model", d, "hello"}, ""};
  }
  if (kind == "tokenizer_config") {
    copy_base(dir);
    fs::copy_file(file, dir / "tokenizer_config.json");
    return {{"generate", "--model", d, "--chat", "--prompt", "hi", "--max-new-tokens", "1"}, ""};
  }
  if (kind == "reference") {
    copy_base(dir);
    return {{"eval", "--model", d, "--reference", file.string()}, ""};
  }
  if (kind == "npy") {
    copy_base(dir);
    fs::copy_file(file, dir / "logits.npy");
    std::ofstream(dir / "ref.json") << R"({"format": "bringup-reference/1", "cases": [{"name": "a",
        "prompt_ids": [1, 2, 3], "reference_ids": [4, 5], "top5_ids": [[4, 1, 2, 3, 0], [5, 1, 2, 3, 0]],
        "top5_logits": [[5, 4, 3, 2, 1], [5, 4, 3, 2, 1]], "logits_npy": "logits.npy"}]})";
    return {{"eval", "--model", d, "--reference", (dir / "ref.json").string()}, ""};
  }
  if (kind == "prompt") {
    copy_base(dir);
    return {{"generate", "--model", d, "--prompt-file", file.string(), "--max-new-tokens", "1"},
            ""};
  }
  if (kind == "ids") {
    copy_base(dir);
    return {{"detokenize", "--model", d, "--jsonl"}, test::slurp(file)};
  }
  ADD_FAILURE() << "unknown kind " << kind;
  return {};
}

TEST(BadInputCatalogue, EveryFileIsRefusedCleanly) {
  const auto manifest = nlohmann::json::parse(test::slurp(kCatalogue / "manifest.json"));
  ASSERT_GE(manifest.size(), 30u);
  test::TempDir tmp("catalogue");
  int n = 0;
  for (const auto& entry : manifest) {
    const std::string rel = entry["file"];
    SCOPED_TRACE(rel);
    const Invocation inv = setup(entry["kind"], kCatalogue / rel, tmp / std::to_string(n++));
    const test::CliResult r = test::run_cli(inv.args, inv.stdin_text);
    ASSERT_TRUE(r.exited) << "crashed: " << r.err;
    EXPECT_NE(r.code, 0);
    const auto lines = r.err_lines();
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_EQ(lines[0].rfind("error: ", 0), 0u) << lines[0];
    EXPECT_NE(lines[0].find(entry["expect"].get<std::string>()), std::string::npos)
        << "'" << entry["expect"].get<std::string>() << "' not in: " << lines[0];
  }
}

// The base files themselves are valid, so each refusal above is due to its one defect.
TEST(BadInputCatalogue, TheBaseIsValid) {
  test::TempDir tmp("catalogue-base");
  copy_base(tmp.path());
  const test::CliResult r = test::run_cli(
      {"generate", "--model", tmp.path().string(), "--prompt-ids", "1 2", "--max-new-tokens", "2"});
  EXPECT_EQ(r.code, 0) << r.err;
  const test::CliResult t = test::run_cli({"tokenize", "--model", tmp.path().string(), "hello"});
  EXPECT_EQ(t.code, 0) << t.err;
}

}  // namespace
}  // namespace bringup
