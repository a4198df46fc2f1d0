#include "eval/kl_divergence.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace bringup {

namespace {
// log-softmax normaliser: max + log(sum(exp(x - max))), in double
double log_sum_exp(std::span<const float> x) {
  const double m = *std::max_element(x.begin(), x.end());
  double s = 0;
  for (float v : x) s += std::exp(double{v} - m);
  return m + std::log(s);
}
}  // namespace

void KlDivergence::add(std::span<const float> ref, std::span<const float> eng, int32_t token) {
  const double zr = log_sum_exp(ref), ze = log_sum_exp(eng);
  double kl = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double lp = double{ref[i]} - zr, lq = double{eng[i]} - ze;
    kl += std::exp(lp) * (lp - lq);
  }
  kl_.push_back(std::max(kl, 0.0));
  delta_p_.push_back(std::exp(double{eng[token]} - ze) - std::exp(double{ref[token]} - zr));
}

double KlDivergence::mean() const {
  return kl_.empty()
             ? 0.0
             : std::accumulate(kl_.begin(), kl_.end(), 0.0) / static_cast<double>(kl_.size());
}

double KlDivergence::mean_stderr() const {
  if (kl_.size() < 2) return 0.0;
  const double m = mean();
  double v = 0;
  for (double x : kl_) v += (x - m) * (x - m);
  v /= static_cast<double>(kl_.size() - 1);
  return std::sqrt(v / static_cast<double>(kl_.size()));
}

double KlDivergence::percentile(double p) const {
  if (kl_.empty()) return 0.0;
  std::vector<double> s = kl_;
  std::sort(s.begin(), s.end());
  // linear interpolation between closest ranks (numpy's default)
  const double pos = p / 100.0 * static_cast<double>(s.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, s.size() - 1);
  return s[lo] + (s[hi] - s[lo]) * (pos - static_cast<double>(lo));
}

double KlDivergence::max() const {
  return kl_.empty() ? 0.0 : *std::max_element(kl_.begin(), kl_.end());
}

double KlDivergence::rms_delta_p() const {
  if (delta_p_.empty()) return 0.0;
  double s = 0;
  for (double d : delta_p_) s += d * d;
  return std::sqrt(s / static_cast<double>(delta_p_.size()));
}

double KlDivergence::rms_delta_p_stderr() const {
  const size_t n = delta_p_.size();
  if (n < 2) return 0.0;
  // delta method: se(rms) = se(mean of squares) / (2 rms)
  double m = 0;
  for (double d : delta_p_) m += d * d;
  m /= static_cast<double>(n);
  double v = 0;
  for (double d : delta_p_) v += (d * d - m) * (d * d - m);
  v /= static_cast<double>(n - 1);
  const double rms = std::sqrt(m);
  return rms > 0 ? std::sqrt(v / static_cast<double>(n)) / (2 * rms) : 0.0;
}

}  // namespace bringup
