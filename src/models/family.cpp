#include "models/family.h"

#include "bringup/error.h"

namespace bringup {

extern const FamilySpec kQwen2Family;
extern const FamilySpec kLlamaFamily;

const std::vector<const FamilySpec*>& model_families() {
  static const std::vector<const FamilySpec*> all = {&kQwen2Family, &kLlamaFamily};
  return all;
}

const FamilySpec& family_of(const ModelConfig& c, const std::string& source) {
  std::string known;
  for (const FamilySpec* f : model_families()) {
    if (c.model_type == f->model_type) {
      f->check_config(c, source);
      return *f;
    }
    known += std::string(known.empty() ? "" : ", ") + "'" + f->model_type + "'";
  }
  throw Error(source + ": field 'model_type' is '" + c.model_type +
              "', which is not supported (supported: " + known + ")");
}

LayerTensorNames layer_tensor_names(const FamilySpec& f, int64_t layer) {
  const std::string p = "model.layers." + std::to_string(layer) + ".";
  LayerTensorNames n;
  n.input_norm = p + "input_layernorm.weight";
  n.q = p + "self_attn.q_proj.weight";
  n.k = p + "self_attn.k_proj.weight";
  n.v = p + "self_attn.v_proj.weight";
  n.o = p + "self_attn.o_proj.weight";
  n.post_norm = p + "post_attention_layernorm.weight";
  n.gate = p + "mlp.gate_proj.weight";
  n.up = p + "mlp.up_proj.weight";
  n.down = p + "mlp.down_proj.weight";
  if (f.qkv_bias) {
    n.q_bias = p + "self_attn.q_proj.bias";
    n.k_bias = p + "self_attn.k_proj.bias";
    n.v_bias = p + "self_attn.v_proj.bias";
  }
  return n;
}

std::vector<ExpectedTensor> expected_tensors(const ModelConfig& c) {
  const FamilySpec& f = family_of(c, "config.json");
  const int64_t h = c.hidden_size, q = c.q_dim(), kv = c.kv_dim(), i = c.intermediate_size;
  std::vector<ExpectedTensor> out = {{"model.embed_tokens.weight", {c.vocab_size, h}}};
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerTensorNames n = layer_tensor_names(f, l);
    out.push_back({n.input_norm, {h}});
    out.push_back({n.q, {q, h}});
    if (f.qkv_bias) out.push_back({n.q_bias, {q}});
    out.push_back({n.k, {kv, h}});
    if (f.qkv_bias) out.push_back({n.k_bias, {kv}});
    out.push_back({n.v, {kv, h}});
    if (f.qkv_bias) out.push_back({n.v_bias, {kv}});
    out.push_back({n.o, {h, q}});
    out.push_back({n.post_norm, {h}});
    out.push_back({n.gate, {i, h}});
    out.push_back({n.up, {i, h}});
    out.push_back({n.down, {h, i}});
  }
  out.push_back({"model.norm.weight", {h}});
  if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {c.vocab_size, h}});
  return out;
}

void check_checkpoint(const Checkpoint& ck) {
  family_of(ck.config(), (ck.dir() / "config.json").string());
  check_tensors(expected_tensors(ck.config()), ck.tensors(), ck.dir().string());
}

}  // namespace bringup
