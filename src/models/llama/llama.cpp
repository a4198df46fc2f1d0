// Llama (LlamaForCausalLM: Llama 2 and 3, and Mistral-shaped checkpoints without a sliding
// window): no biases, head_dim from the config, rope_theta as given.
#include "bringup/error.h"
#include "models/family.h"

namespace bringup {

namespace {

void check_llama(const ModelConfig& c, const std::string& source) {
  if (c.attention_bias.value_or(false)) {
    throw Error(source +
                ": field 'attention_bias' is true; Llama attention biases are not supported yet");
  }
  if (c.mlp_bias) {
    throw Error(source + ": field 'mlp_bias' is true; Llama MLP biases are not supported yet");
  }
}

}  // namespace

extern const FamilySpec kLlamaFamily = {"llama", "Llama (no biases)", check_llama, false,
                                        [](const ModelConfig&) { return int64_t{0}; }};

}  // namespace bringup
