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

// transformers 4.49 (the reference) masks Qwen2's eager and SDPA attention to the last
// sliding_window positions whenever the config has one, use_sliding_window or not (that flag gates
// only its flash-attention path); Qwen2Config's default is 4096. Published Qwen2 checkpoints set it
// to their whole context, where it changes nothing.
int64_t qwen2_window(const ModelConfig& c) {
  return c.sliding_window < 0 ? 4096 : c.sliding_window;
}

}  // namespace

extern const FamilySpec kQwen2Family = {"qwen2", "Qwen2 (q/k/v biases)", check_qwen2, true,
                                        qwen2_window};

}  // namespace bringup
