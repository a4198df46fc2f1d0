// Picking the next token as transformers' generate does: repetition penalty (and OpenAI's
// frequency and presence penalties over the generated ids), then temperature, top-k, top-p and
// min-p, then a draw from the softmax of what is left (or the argmax when
// sampling is off or the temperature is 0).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "bringup/config.h"

namespace bringup {

struct SamplingParams {
  bool do_sample = false;
  double temperature = 1.0;
  int64_t top_k = 0;   // 0: off
  double top_p = 1.0;  // 1: off
  double min_p = 0.0;  // 0: off
  double repetition_penalty = 1.0;
  double frequency_penalty = 0.0;  // OpenAI's: minus this x the times an id was generated
  double presence_penalty = 0.0;   // OpenAI's: minus this once an id was generated
  uint64_t seed = 0;

  static SamplingParams from(const GenerationConfig& g);
  bool greedy() const { return !do_sample || temperature == 0.0; }
};

// transformers' RepetitionPenaltyLogitsProcessor: every id seen so far has its logit divided by
// the penalty when positive, multiplied by it when negative.
void apply_repetition_penalty(std::span<float> logits, std::span<const int32_t> seen,
                              double penalty);
// OpenAI's penalties: logit -= count x frequency + (count > 0) x presence, per generated id.
void apply_frequency_penalties(std::span<float> logits, std::span<const int32_t> generated,
                               double frequency, double presence);

struct Candidate {
  int32_t id;
  float logit;  // after penalty and temperature
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) {}

  // The tokens that survive temperature, top-k, top-p and min-p (largest logit first).
  std::vector<Candidate> candidates(std::span<const float> logits) const;
  // The next token; `seen` are the ids of the sequence so far (for the repetition penalty),
  // `generated` those of the reply (for the frequency and presence penalties).
  int32_t pick(std::span<const float> logits, std::span<const int32_t> seen,
               std::span<const int32_t> generated = {});

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
  std::vector<float> scratch_;
};

}  // namespace bringup
