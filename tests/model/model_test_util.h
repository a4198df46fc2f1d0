// Helpers for tests that run whole models: temporary checkpoints and scoring.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "bringup/bringup.h"
#include "eval/self_reference.h"
#include "eval/teacher_forcing.h"
#include "models/synth.h"

namespace bringup::test {

inline std::filesystem::path golden(const std::string& name) {
  return std::filesystem::path(BRINGUP_TEST_DATA) / "golden" / name;
}

// A directory removed when the test ends.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    path_ = std::filesystem::temp_directory_path() /
            ("bringup-" + tag + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& s) const { return path_ / s; }

 private:
  std::filesystem::path path_;
};

// A small Qwen2 config to start from.
inline ModelConfig small_config() {
  ModelConfig c;
  c.model_type = "qwen2";
  c.hidden_act = "silu";
  c.vocab_size = 512;
  c.hidden_size = 128;
  c.intermediate_size = 320;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 32;
  c.max_position_embeddings = 2048;
  c.rope_theta = 1e6;
  c.rms_norm_eps = 1e-6;
  c.torch_dtype = "bfloat16";
  return c;
}

inline EvalTotals score(Model& model, const Reference& ref) {
  EvalTotals t;
  for (const ReferenceCase& c : ref.cases) t.add(teacher_force(model, c, {}));
  return t;
}

inline double frac(int64_t hits, int64_t total) {
  return static_cast<double>(hits) / static_cast<double>(total);
}

}  // namespace bringup::test
