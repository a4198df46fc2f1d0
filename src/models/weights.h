// A decoder's weights on the device, in the formats of a precision policy, loaded by the names
// its family gives. q/k/v are stacked into one projection and gate/up into another, as TTNN
// bring-ups fuse them. One list of slots (weight_slots) says what is made from which tensors, in
// order: converting, and reading and writing the packed-weight cache, all walk it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bringup/checkpoint.h"
#include "bringup/model.h"
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

// One matrix or vector of Weights and the checkpoint tensors it is made from (stacked along the
// output dimension, or concatenated).
struct WeightSlot {
  Weight* matrix = nullptr;  // exactly one of matrix and vector is set
  Tensor* vector = nullptr;
  std::vector<std::string> names;
  WeightFormat group = WeightFormat::kF32;  // a matrix's format under the policy
};
// Every slot of w, in loading order; makes w's layers and its own lm_head where the config and
// policy call for one.
std::vector<WeightSlot> weight_slots(Weights& w, const ModelConfig& c, const FamilySpec& family,
                                     const WeightPolicy& policy);

// Converts every tensor once (the checkpoint's pages are dropped from memory as each is done),
// or reads them from the packed-weight cache file `cache_file` when it holds these weights;
// writes that file after converting. Empty cache_file: no cache; `map`: the matrices stay in the
// mapped file (ModelOptions::map_weight_cache). `report` says what happened.
Weights load_weights(const Checkpoint& ck, const FamilySpec& family, Device& dev,
                     Precision precision, const std::filesystem::path& cache_file, bool map,
                     WeightCacheReport& report);

}  // namespace bringup
