// RoPE's inverse frequencies and attention factor for a config's rope_scaling, computed exactly as
// transformers 4.49 computes them (modeling_rope_utils.py): the same formulas in the same fp32
// steps, so a scaled model's cos and sin tables equal the reference's. YaRN blends interpolated
// and extrapolated frequencies over a ramp set by beta_fast/beta_slow and scales cos and sin by its
// attention factor; llama3 divides the low frequencies by the factor with a smooth band between;
// linear divides them all; dynamic (NTK) raises the base once a sequence grows past the original
// context, so its frequencies depend on the length the sequence reaches in a step.
#pragma once

#include <cstdint>
#include <vector>

#include "bringup/config.h"

namespace bringup {

struct RopeParameters {
  std::vector<float> inv_freq;  // head_dim / 2
  float attention_factor = 1.0f;
};

// `seq_len`: the length the sequence reaches in this forward step (dynamic scaling only; at most
// the original context means unscaled).
RopeParameters rope_parameters(const ModelConfig& c, int64_t seq_len = 0);
// Whether rope_parameters depends on seq_len (dynamic scaling).
inline bool rope_depends_on_length(const ModelConfig& c) {
  return c.rope_scaling.type == "dynamic";
}

}  // namespace bringup
