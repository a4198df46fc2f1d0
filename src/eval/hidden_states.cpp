#include "eval/hidden_states.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace bringup {

std::vector<float> HiddenStates::hf_layout() const {
  const size_t plane = static_cast<size_t>(positions * hidden);
  const size_t layers = after_mlp.size();
  std::vector<float> out((layers + 1) * plane);
  std::copy(embedding.begin(), embedding.end(), out.begin());
  for (size_t l = 1; l < layers; ++l)
    std::copy(after_mlp[l - 1].begin(), after_mlp[l - 1].end(), out.begin() + l * plane);
  std::copy(final_norm.begin(), final_norm.end(), out.begin() + layers * plane);
  return out;
}

HiddenStates capture_hidden_states(Model& model, std::span<const int32_t> prompt) {
  const ModelConfig& c = model.config();
  HiddenStates hs;
  hs.positions = static_cast<int64_t>(prompt.size());
  hs.hidden = c.hidden_size;
  const size_t plane = static_cast<size_t>(hs.positions * hs.hidden);
  hs.embedding.resize(plane);
  hs.final_norm.resize(plane);
  hs.after_attention.assign(c.num_hidden_layers, std::vector<float>(plane));
  hs.after_mlp.assign(c.num_hidden_layers, std::vector<float>(plane));
  model.set_tap([&](const Tap& t) {
    std::vector<float>* dst = nullptr;
    switch (t.stage) {
      case Tap::Stage::kEmbedding:
        dst = &hs.embedding;
        break;
      case Tap::Stage::kAfterAttention:
        dst = &hs.after_attention[t.layer];
        break;
      case Tap::Stage::kAfterMlp:
        dst = &hs.after_mlp[t.layer];
        break;
      case Tap::Stage::kFinalNorm:
        dst = &hs.final_norm;
        break;
    }
    std::memcpy(dst->data() + t.first_position * t.cols, t.data,
                static_cast<size_t>(t.rows * t.cols) * 4);
  });
  auto seq = model.new_sequence();
  try {
    model.prefill(*seq, prompt);
  } catch (...) {
    model.set_tap(nullptr);
    throw;
  }
  model.set_tap(nullptr);
  return hs;
}

double pearson(std::span<const float> a, std::span<const float> b) {
  const size_t n = std::min(a.size(), b.size());
  double ma = 0, mb = 0;
  for (size_t i = 0; i < n; ++i) {
    ma += a[i];
    mb += b[i];
  }
  ma /= static_cast<double>(n);
  mb /= static_cast<double>(n);
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < n; ++i) {
    const double x = a[i] - ma, y = b[i] - mb;
    sab += x * y;
    saa += x * x;
    sbb += y * y;
  }
  if (saa == 0 || sbb == 0) return saa == sbb && max_abs_diff(a, b) == 0 ? 1.0 : 0.0;
  return sab / std::sqrt(saa * sbb);
}

double max_abs_diff(std::span<const float> a, std::span<const float> b) {
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    m = std::max(m, std::fabs(double{a[i]} - b[i]));
  return m;
}

}  // namespace bringup
