// References made by the project's own exact fp32 path: a greedy continuation with the top-5
// (and, on request, every logit) of each step, in the bringup-reference/1 shape.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "bringup/model.h"
#include "eval/reference.h"

namespace bringup {

// The seed's default prompt (ids 1..12), for eval and compare when none is given.
std::vector<int32_t> seed_default_prompt();

// Greedy continuation of `prompt` by `model` for n tokens (prefill, then n - 1 decode steps).
// When logits is given it receives the [n, vocab] logits that predicted each token.
ReferenceCase make_reference_case(Model& model, const std::string& name,
                                  std::span<const int32_t> prompt, int64_t n,
                                  std::vector<float>* logits = nullptr);

}  // namespace bringup
