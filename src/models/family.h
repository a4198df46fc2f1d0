// Model families as specs. A family owns what is specific to it: which configs it accepts, the
// tensor list its config implies (one table that drives loading, `synth`, `plan`, `compare`'s
// layer names and the checks of a checkpoint), and how its weights are named. The forward pass
// is shared by the decoder families here (models/decoder.cpp); a family that needs another one
// adds its own builder. A registry maps config.json's model_type to the spec.
#pragma once

#include <string>
#include <vector>

#include "bringup/checkpoint.h"
#include "bringup/config.h"

namespace bringup {

// Names of one decoder layer's tensors, "model.layers.N." + suffix.
struct LayerTensorNames {
  std::string input_norm, q, k, v, o, post_norm, gate, up, down;
  std::string q_bias, k_bias, v_bias;  // empty when the family has none
};

struct FamilySpec {
  const char* model_type;
  const char* description;
  // Refuses, naming the field in `source`, what the family does not implement.
  void (*check_config)(const ModelConfig& c, const std::string& source);
  bool qkv_bias;  // q/k/v projections carry biases
  // Positions a query attends back over, itself included; 0: all of them.
  int64_t (*attention_window)(const ModelConfig& c);
};

// Every family bringup implements, in a fixed order.
const std::vector<const FamilySpec*>& model_families();
// The family of c.model_type, its config checked; the Error names `source` and the field.
const FamilySpec& family_of(const ModelConfig& c, const std::string& source);

LayerTensorNames layer_tensor_names(const FamilySpec& f, int64_t layer);
// Every tensor a config implies, with its shape: the one table the loader, synth, plan and the
// checkpoint check use.
std::vector<ExpectedTensor> expected_tensors(const ModelConfig& c);
// The family is known and every tensor its config implies is in the checkpoint.
void check_checkpoint(const Checkpoint& ck);

}  // namespace bringup
