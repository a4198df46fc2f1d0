// What llama.cpp's --kl-divergence reports, for steps whose full reference logits are known:
// KL(reference || engine) with its standard error, 99th percentile and maximum, and the RMS of
// delta-p, the change in the probability of the reference token.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace bringup {

class KlDivergence {
 public:
  // One scored step: the reference's logits, the engine's, and the token the reference chose.
  void add(std::span<const float> reference, std::span<const float> engine, int32_t token);

  size_t steps() const { return kl_.size(); }
  double mean() const;
  double mean_stderr() const;
  double percentile(double p) const;  // p in [0, 100]
  double max() const;
  double rms_delta_p() const;  // a fraction (multiply by 100 for %)
  double rms_delta_p_stderr() const;

 private:
  std::vector<double> kl_, delta_p_;
};

}  // namespace bringup
