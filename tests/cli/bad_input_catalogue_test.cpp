// The catalogue of malformed inputs in tests/data/bad-inputs (one file per problem, named after
// it; manifest.json says what the error must name): the CLI refuses each with a one-line error and
// a non-zero exit code, and never crashes. Under `make test-sanitize` this also runs with ASan and
// UBSan.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

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
    return {{"generate", "--model", d, "--chat", "--prompt", "!#", "--max-new-tokens", "1"}, ""};
  }
  if (kind == "reference") {
    copy_base(dir);
    return {{"eval", "--model", d, "--reference", file.string()}, ""};
  }
  if (kind == "npy") {
    copy_base(dir);
    fs::copy_file(file, dir / "logits.npy", fs::copy_options::overwrite_existing);
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
  if (kind == "gguf") {
    fs::create_directories(dir);
    fs::copy_file(file, dir / "model.gguf");
    return {{"generate", "--model", (dir / "model.gguf").string(), "--prompt-ids", "1 2",
             "--max-new-tokens", "1"},
            ""};
  }
  if (kind == "gguf_tokenizer") {
    fs::create_directories(dir);
    fs::copy_file(file, dir / "tokenizer.gguf");
    return {{"tokenize", "--model", (dir / "tokenizer.gguf").string(), "hello"}, ""};
  }
  ADD_FAILURE() << "unknown kind " << kind;
  return {};
}

// The message without the paths it names: a needle must match what the defect produces, not
// a file or directory name that every message of that file starts with.
std::string without_paths(std::string msg, const std::vector<std::string>& paths) {
  for (const std::string& p : paths) {
    for (size_t at; !p.empty() && (at = msg.find(p)) != std::string::npos;) msg.erase(at, p.size());
  }
  return msg;
}

TEST(BadInputCatalogue, EveryFileIsRefusedCleanly) {
  const auto manifest = nlohmann::json::parse(test::slurp(kCatalogue / "manifest.json"));
  test::TempDir tmp("catalogue");
  int n = 0;
  for (const auto& entry : manifest) {
    const std::string rel = entry["file"];
    SCOPED_TRACE(rel);
    const fs::path dir = tmp / std::to_string(n++);
    const Invocation inv = setup(entry["kind"], kCatalogue / rel, dir);
    const test::CliResult r = test::run_cli(inv.args, inv.stdin_text);
    ASSERT_TRUE(r.exited) << "crashed: " << r.err;
    EXPECT_NE(r.code, 0);
    const auto lines = r.err_lines();
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_EQ(lines[0].rfind("error: ", 0), 0u) << lines[0];
    const std::string needle = entry["expect"];
    EXPECT_NE(without_paths(lines[0], {(kCatalogue / rel).string(), dir.string()}).find(needle),
              std::string::npos)
        << "'" << needle << "' not in: " << lines[0];
  }
}

// Every file of the catalogue is in the manifest (none is left untested).
TEST(BadInputCatalogue, ManifestListsEveryFile) {
  const auto manifest = nlohmann::json::parse(test::slurp(kCatalogue / "manifest.json"));
  std::set<std::string> listed;
  for (const auto& entry : manifest) listed.insert(entry["file"].get<std::string>());
  size_t on_disk = 0;
  for (const auto& e : fs::recursive_directory_iterator(kCatalogue)) {
    const std::string rel = fs::relative(e.path(), kCatalogue).string();
    if (!e.is_regular_file() || rel.rfind("base/", 0) == 0 || rel == "manifest.json" ||
        rel == "make_bad_inputs.py") {
      continue;
    }
    ++on_disk;
    EXPECT_TRUE(listed.count(rel)) << rel << " is not in manifest.json";
  }
  EXPECT_EQ(on_disk, listed.size());
}

// Each kind's invocation succeeds on the valid twin of its file (base/), so each refusal above is
// due to its one defect.
TEST(BadInputCatalogue, TheBaseIsValidForEveryKind) {
  const std::pair<std::string, std::string> twins[] = {
      {"safetensors", "model.safetensors"},
      {"config", "config.json"},
      {"generation_config", "generation_config.json"},
      {"index", "shards/model.safetensors.index.json"},
      {"tokenizer", "tokenizer.json"},
      {"tokenizer_config", "tokenizer_config.json"},
      {"reference", "reference.json"},
      {"npy", "logits.npy"},
      {"prompt", "prompt.txt"},
      {"ids", "ids.jsonl"},
      {"gguf", "model.gguf"},
      {"gguf_tokenizer", "tokenizer.gguf"}};
  test::TempDir tmp("catalogue-base");
  for (const auto& [kind, twin] : twins) {
    SCOPED_TRACE(kind);
    const Invocation inv = setup(kind, kCatalogue / "base" / twin, tmp / kind);
    const test::CliResult r = test::run_cli(inv.args, inv.stdin_text);
    EXPECT_TRUE(r.exited && r.code == 0) << r.err;
  }
}

}  // namespace
}  // namespace bringup
