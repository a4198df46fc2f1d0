// The activations of a forward step as device tensors, and the one table of their sizes: the
// model allocates from it and the memory plan counts from it, so the two cannot drift apart.
#pragma once

#include <cstdint>
#include <vector>

#include "bringup/config.h"
#include "bringup/model.h"
#include "core/tensor.h"
#include "device/device.h"

namespace bringup {

struct Activations {
  Tensor x;             // residual stream [T, hidden]
  Tensor h;             // normed input of a block / concatenated heads / gathered rows
  Tensor qkv, q, k, v;  // fused projection and its heads
  Tensor attn;          // attention output heads
  Tensor o;             // output of o_proj / down_proj
  Tensor gate_up, mlp;  // MLP
  Tensor cos, sin;      // rotary tables for the rows' positions
  Tensor last, logits;  // final-normed rows and their logits
};

// The most rows one forward step holds: options.prefill_chunk (512 when 0).
int64_t max_step_rows(const ModelOptions& o);
// The most rows of a step that return logits (ModelOptions::max_logit_rows, at most a step).
int64_t max_logit_rows(const ModelOptions& o);

// Rows whose logits one lm_head pass computes: a step wanting more (prefill with all positions)
// takes several passes, so the logits buffer stays small beside a large vocabulary.
constexpr int64_t kLogitRows = 64;

// One activation at its largest: `rows` rows of a step.
struct ActivationSlot {
  const char* name;
  Tensor Activations::*tensor;
  int64_t floats;
};
// Each activation at a step of `rows` rows of which `logit_rows` at most return logits.
std::vector<ActivationSlot> activation_slots(const ModelConfig& c, int64_t rows,
                                             int64_t logit_rows);
size_t activation_bytes(const ModelConfig& c, int64_t rows, int64_t logit_rows);
// Every slot as a device allocation of its size.
Activations allocate_activations(Device& dev, const ModelConfig& c, int64_t rows,
                                 int64_t logit_rows);

}  // namespace bringup
