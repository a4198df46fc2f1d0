// A decoder's weights on the device, in the formats of a precision policy, loaded by the names
// its family gives. q/k/v are stacked into one projection and gate/up into another, as TTNN
// bring-ups fuse them.
#pragma once

#include <memory>
#include <vector>

#include "bringup/checkpoint.h"
#include "core/tensor.h"
#include "device/device.h"
#include "models/family.h"
#include "models/precision_policy.h"

namespace bringup {

struct LayerWeights {
  Tensor input_norm;  // [hidden]
  Weight qkv;         // [q + 2 kv, hidden]
  Tensor qkv_bias;    // [q + 2 kv]; empty when the family has none
  const Tensor* bias() const { return qkv_bias.numel() ? &qkv_bias : nullptr; }
  Weight o_proj;     // [hidden, q]
  Tensor post_norm;  // [hidden]
  Weight gate_up;    // [2 intermediate, hidden]
  Weight down;       // [hidden, intermediate]
};

struct Weights {
  Weight embed;                         // [vocab, hidden]
  std::unique_ptr<Weight> lm_head_own;  // absent when tied to embed
  Tensor final_norm;                    // [hidden]
  std::vector<LayerWeights> layers;
  size_t vector_bytes = 0;  // biases and norm weights as the device stores them

  const Weight& lm_head() const { return lm_head_own ? *lm_head_own : embed; }
  size_t bytes() const;  // every matrix and vector as stored
};

// Converts every tensor once; the checkpoint's pages are dropped from memory as each is done.
Weights load_weights(const Checkpoint& ck, const FamilySpec& family, Device& dev,
                     const WeightPolicy& policy);

}  // namespace bringup
