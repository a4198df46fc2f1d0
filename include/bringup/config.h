// The parts of a Hugging Face checkpoint's config.json and generation_config.json that change
// what the model computes or how it generates.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace bringup {

// RoPE scaling (config.json's rope_scaling) for contexts past the one a model was trained at.
// ops::rope_parameters turns it into inverse frequencies and an attention factor exactly as
// transformers 4.49's modeling_rope_utils.py does.
struct RopeScaling {
  std::string type = "default";  // default, linear, dynamic (NTK), yarn, llama3
  double factor = 1.0;
  // The context the model was trained at: rope_scaling's original_max_position_embeddings when
  // given, else max_position_embeddings.
  int64_t original_context = 0;
  std::optional<double> attention_factor;            // yarn; unset: 1 + 0.1 ln(factor)
  double beta_fast = 32, beta_slow = 1;              // yarn
  double low_freq_factor = 1, high_freq_factor = 4;  // llama3
};

struct ModelConfig {
  std::string model_type;  // "qwen2", "llama": a family in models/family.h
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // config's head_dim when present, else hidden_size / num_attention_heads
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  int64_t max_position_embeddings = 0;
  bool tie_word_embeddings = false;
  bool use_sliding_window = false;
  int64_t sliding_window = -1;  // -1: not in config.json; 0: null
  int64_t max_window_layers = 0;
  std::optional<bool> attention_bias;  // q/k/v/o biases (Llama); Qwen2 always has q/k/v biases
  bool mlp_bias = false;
  std::string hidden_act;   // "silu"
  std::string torch_dtype;  // informational: the dtype the weights were saved in

  // The longest context the model takes: max_position_embeddings, or factor x the original
  // context when RoPE is scaled and that is longer.
  int64_t context_length() const;
  int64_t q_dim() const { return num_attention_heads * head_dim; }
  int64_t kv_dim() const { return num_key_value_heads * head_dim; }
  // Query heads that share one KV head (7 for Arcee-Spark).
  int64_t group_size() const { return num_attention_heads / num_key_value_heads; }
};

struct GenerationConfig {
  std::optional<int64_t> bos_token_id;
  std::optional<int64_t> pad_token_id;
  std::vector<int64_t> eos_token_ids;  // one or several
  bool do_sample = false;
  double temperature = 1.0;
  int64_t top_k = 50;
  double top_p = 1.0;
  double min_p = 0.0;
  double repetition_penalty = 1.0;
  std::optional<int64_t> max_new_tokens;
};

// Parse and validate; the error names the file and field. Unsupported features (rope_scaling
// types or keys other than those above, sliding windows, activations other than silu) are refused
// rather than ignored; whether the model family exists is checked when a model is built
// (models/family.h).
ModelConfig parse_model_config(const std::string& json_text, const std::string& source_name);
ModelConfig load_model_config(const std::filesystem::path& file);
GenerationConfig parse_generation_config(const std::string& json_text,
                                         const std::string& source_name);
GenerationConfig load_generation_config(const std::filesystem::path& file);

}  // namespace bringup
