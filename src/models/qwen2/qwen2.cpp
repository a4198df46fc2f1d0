// Qwen2 (Qwen2ForCausalLM; Arcee-Spark): the Llama decoder with biases on q, k and v.
#include "bringup/error.h"
#include "models/family.h"

namespace bringup {

namespace {

void check_qwen2(const ModelConfig& c, const std::string& source) {
  if (c.attention_bias == false) {
    throw Error(source + ": field 'attention_bias' is false; Qwen2's q/k/v always have biases");
  }
  if (c.mlp_bias) throw Error(source + ": field 'mlp_bias' is true; Qwen2's MLP has no biases");
}

}  // namespace

extern const FamilySpec kQwen2Family = {"qwen2", "Qwen2 (q/k/v biases)", check_qwen2, true};

}  // namespace bringup
