#include "models/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace bringup {

namespace {

// base ** (arange(0, dim, 2).float() / dim), in fp32 as torch computes it.
std::vector<float> powers(float base, int64_t dim) {
  std::vector<float> p(static_cast<size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    p[static_cast<size_t>(i)] =
        static_cast<float>(std::pow(static_cast<double>(base), static_cast<double>(exponent)));
  }
  return p;
}

std::vector<float> inverse(const std::vector<float>& p) {
  std::vector<float> inv(p.size());
  for (size_t i = 0; i < p.size(); ++i) inv[i] = 1.0f / p[i];
  return inv;
}

// _compute_yarn_parameters.
RopeParameters yarn(const ModelConfig& c) {
  const RopeScaling& s = c.rope_scaling;
  const int64_t dim = c.head_dim;
  const double base = c.rope_theta;
  const auto correction_dim = [&](double rotations) {
    return (static_cast<double>(dim) * std::log(static_cast<double>(s.original_context) /
                                                (rotations * 2 * std::numbers::pi))) /
           (2 * std::log(base));
  };
  const double low = std::max(std::floor(correction_dim(s.beta_fast)), 0.0);
  double high = std::min(std::ceil(correction_dim(s.beta_slow)), static_cast<double>(dim - 1));
  if (low == high) high += 0.001;  // as transformers: no zero-width ramp
  const std::vector<float> pos = powers(static_cast<float>(base), dim);
  const float factor = static_cast<float>(s.factor);
  RopeParameters r;
  r.inv_freq.resize(pos.size());
  for (size_t i = 0; i < pos.size(); ++i) {
    const float extrapolation = 1.0f / pos[i];
    const float interpolation = 1.0f / (factor * pos[i]);
    const float ramp = std::clamp(
        (static_cast<float>(i) - static_cast<float>(low)) / static_cast<float>(high - low), 0.0f,
        1.0f);
    const float keep = 1.0f - ramp;  // inv_freq_extrapolation_factor
    // Two products, then their sum, each rounded to fp32 (torch runs them as separate kernels).
    const float a = interpolation * (1.0f - keep);
    const float b = extrapolation * keep;
    r.inv_freq[i] = a + b;
  }
  r.attention_factor =
      static_cast<float>(s.attention_factor.value_or(0.1 * std::log(s.factor) + 1.0));
  return r;
}

// _compute_llama3_parameters.
std::vector<float> llama3(const ModelConfig& c) {
  const RopeScaling& s = c.rope_scaling;
  std::vector<float> inv = inverse(powers(static_cast<float>(c.rope_theta), c.head_dim));
  const float factor = static_cast<float>(s.factor);
  const double old = static_cast<double>(s.original_context);
  const float low_wavelen = static_cast<float>(old / s.low_freq_factor);
  const float high_wavelen = static_cast<float>(old / s.high_freq_factor);
  const float two_pi = static_cast<float>(2 * std::numbers::pi);
  for (float& f : inv) {
    const float wavelen = two_pi / f;
    const float scaled = wavelen > low_wavelen ? f / factor : f;
    const float smooth =
        (static_cast<float>(old) / wavelen - static_cast<float>(s.low_freq_factor)) /
        static_cast<float>(s.high_freq_factor - s.low_freq_factor);
    const float a = (1.0f - smooth) * scaled / factor;
    const float b = smooth * scaled;
    const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
    f = medium ? a + b : scaled;
  }
  return inv;
}

// _compute_dynamic_ntk_parameters with the length as Qwen2RotaryEmbedding passes it: a tensor,
// so the new base is computed in fp32.
std::vector<float> dynamic(const ModelConfig& c, int64_t seq_len) {
  const RopeScaling& s = c.rope_scaling;
  const int64_t dim = c.head_dim;
  const float len = static_cast<float>(seq_len);
  const float ratio = len * static_cast<float>(s.factor) / static_cast<float>(s.original_context);
  const float grown = ratio - static_cast<float>(s.factor - 1);
  const double exponent = static_cast<double>(dim) / static_cast<double>(dim - 2);  // not rounded
  const float base = static_cast<float>(c.rope_theta) *
                     static_cast<float>(std::pow(static_cast<double>(grown), exponent));
  return inverse(powers(base, dim));
}

}  // namespace

RopeParameters rope_parameters(const ModelConfig& c, int64_t seq_len) {
  const RopeScaling& s = c.rope_scaling;
  if (s.type == "yarn") return yarn(c);
  RopeParameters r;
  if (s.type == "llama3") {
    r.inv_freq = llama3(c);
  } else if (s.type == "dynamic" && seq_len > s.original_context) {
    r.inv_freq = dynamic(c, seq_len);
  } else {
    r.inv_freq = inverse(powers(static_cast<float>(c.rope_theta), c.head_dim));
    if (s.type == "linear") {
      for (float& f : r.inv_freq) f /= static_cast<float>(s.factor);
    }
  }
  return r;
}

}  // namespace bringup
