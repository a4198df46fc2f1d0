// The residual stream of a prompt, captured through the model's taps: the embedding, each decoder
// layer after attention and after the MLP, and the final norm.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "bringup/model.h"

namespace bringup {

struct HiddenStates {
  int64_t positions = 0, hidden = 0;
  std::vector<float> embedding;                     // [T, H]
  std::vector<std::vector<float>> after_attention;  // per layer [T, H]
  std::vector<std::vector<float>> after_mlp;        // per layer [T, H]
  std::vector<float> final_norm;                    // [T, H]

  // Hugging Face's output_hidden_states for the prompt: [L + 1, T, H] (index 0 the embedding,
  // index l the output of the l-th layer, index L the last layer's output after the final norm).
  std::vector<float> hf_layout() const;
};

HiddenStates capture_hidden_states(Model& model, std::span<const int32_t> prompt);

// Pearson correlation of two equally long arrays (1 when both are constant and equal).
double pearson(std::span<const float> a, std::span<const float> b);
double max_abs_diff(std::span<const float> a, std::span<const float> b);

}  // namespace bringup
