// The seed's teacher forcing: prefill the prompt, score the logits of its last position against
// the first reference token, then decode the reference tokens one at a time and score each
// step's logits against the next one.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "bringup/model.h"
#include "eval/reference.h"

namespace bringup {

struct EvalOptions {
  bool prefill_decode = false;  // push the prompt through the decode path one token at a time
};

struct CaseScore {
  std::string name;
  int64_t prompt_len = 0;
  int64_t steps = 0;  // scored steps
  int64_t top1 = 0, top5 = 0;
  double max_abs_logit_err = 0;  // over the reference's top-5 entries of every step
  double prefill_seconds = 0, decode_seconds = 0;
  int64_t decode_steps = 0;
};

struct EvalTotals {
  int64_t prompt_tokens = 0, steps = 0, top1 = 0, top5 = 0, decode_steps = 0;
  double max_abs_logit_err = 0, prefill_seconds = 0, decode_seconds = 0;
  void add(const CaseScore& c);
};

// Called with every scored step's engine logits (for statistics that need all of them).
using StepObserver = std::function<void(size_t step, std::span<const float> logits)>;

CaseScore teacher_force(Model& model, const ReferenceCase& c, const EvalOptions& options,
                        const StepObserver& observer = nullptr);

// The k largest logits' ids, largest first.
std::vector<int32_t> top_k_ids(std::span<const float> logits, int k);

// "Top-1 accuracy: 97.92% (0.9792)"
std::string accuracy_line(const char* label, int64_t hits, int64_t total);

}  // namespace bringup
