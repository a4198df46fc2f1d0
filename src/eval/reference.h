// bringup-reference/1 files: what Hugging Face transformers (or the project's fp32 path) produced
// for a checkpoint, so the engine can be scored without Python. Format:
// shared/docs/reference-format.md.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace bringup {

struct ReferenceCase {
  std::string name;
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> reference_ids;             // N greedy continuation tokens
  std::vector<std::array<int32_t, 5>> top5_ids;   // N rows
  std::vector<std::array<float, 5>> top5_logits;  // N rows
  std::optional<std::string> logits_npy;          // [N, vocab], beside the reference file
  std::optional<std::string> hidden_states_npy;   // [L + 1, prompt_len, hidden]
};

struct Reference {
  std::string model;
  std::string weights_sha256;
  std::string generator;
  std::optional<double> hf_bf16_top1, hf_bf16_top5;
  std::vector<ReferenceCase> cases;
  std::filesystem::path dir;  // where the .npy files named by cases are
};

// Limits that keep a hostile file from exhausting memory and time.
constexpr int64_t kMaxReferenceSteps = int64_t{1} << 18;   // scored steps, all cases together
constexpr int64_t kMaxReferencePrompt = int64_t{1} << 22;  // tokens per case
constexpr size_t kMaxReferenceFile = size_t{64} << 20;     // bytes of JSON

Reference load_reference(const std::filesystem::path& file);
Reference parse_reference(const std::string& json_text, const std::string& source);
void save_reference(const Reference& ref, const std::filesystem::path& file);
// Every id of every case inside [0, vocab); the error names the file and case.
void check_reference_vocab(const Reference& ref, int64_t vocab, const std::string& source);

}  // namespace bringup
