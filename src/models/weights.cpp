#include "models/weights.h"

#include <string>

#include "core/dtype.h"

namespace bringup {

namespace {

Weight upload(const Checkpoint& ck, Device& dev, std::initializer_list<std::string> names,
              const WeightPolicy& policy, WeightFormat group) {
  std::vector<HostMatrix> parts;
  for (const std::string& n : names) parts.push_back(HostMatrix::of(ck.tensor(n)));
  Weight w = dev.upload_weight(parts, device_format(policy, group, parts));
  for (const std::string& n : names) ck.release(ck.tensor(n));
  return w;
}

// Biases and norm weights: fp32 device tensors, concatenated, rounded to bf16 under bf16
// policies.
Tensor vector(const Checkpoint& ck, Device& dev, std::initializer_list<std::string> names,
              bool bf16) {
  std::vector<float> host;
  for (const std::string& name : names) {
    const TensorView& v = ck.tensor(name);
    for (int64_t i = 0; i < v.numel(); ++i) host.push_back(bf16 ? round_to_bf16(v.at(i)) : v.at(i));
  }
  Tensor t = Tensor::on(dev.allocate(host.size() * sizeof(float)), *names.begin());
  t.resize({static_cast<int64_t>(host.size())});
  dev.write(t, host);
  return t;
}

}  // namespace

size_t Weights::bytes() const {
  size_t n = vector_bytes + embed.bytes + (lm_head_own ? lm_head_own->bytes : 0);
  for (const LayerWeights& l : layers)
    n += l.qkv.bytes + l.o_proj.bytes + l.gate_up.bytes + l.down.bytes;
  return n;
}

Weights load_weights(const Checkpoint& ck, const FamilySpec& family, Device& dev,
                     const WeightPolicy& policy) {
  const ModelConfig& c = ck.config();
  const bool bf16 = policy.vectors_bf16;
  Weights w;
  w.embed = upload(ck, dev, {"model.embed_tokens.weight"}, policy, policy.embedding);
  if (!c.tie_word_embeddings) {
    w.lm_head_own =
        std::make_unique<Weight>(upload(ck, dev, {"lm_head.weight"}, policy, policy.lm_head));
  } else if (policy.lm_head != policy.embedding) {
    w.lm_head_own = std::make_unique<Weight>(
        upload(ck, dev, {"model.embed_tokens.weight"}, policy, policy.lm_head));
  }
  w.final_norm = vector(ck, dev, {"model.norm.weight"}, bf16);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerTensorNames n = layer_tensor_names(family, l);
    LayerWeights L;
    L.input_norm = vector(ck, dev, {n.input_norm}, bf16);
    L.qkv = upload(ck, dev, {n.q, n.k, n.v}, policy, policy.attention);
    if (family.qkv_bias) L.qkv_bias = vector(ck, dev, {n.q_bias, n.k_bias, n.v_bias}, bf16);
    L.o_proj = upload(ck, dev, {n.o}, policy, policy.attention);
    L.post_norm = vector(ck, dev, {n.post_norm}, bf16);
    L.gate_up = upload(ck, dev, {n.gate, n.up}, policy, policy.gate_up);
    L.down = upload(ck, dev, {n.down}, policy, policy.down);
    w.layers.push_back(std::move(L));
  }
  const size_t per_value = bf16 ? 2 : 4;
  w.vector_bytes = w.final_norm.numel() * per_value;
  for (const LayerWeights& L : w.layers) {
    w.vector_bytes += (L.input_norm.numel() + L.qkv_bias.numel() + L.post_norm.numel()) * per_value;
  }
  return w;
}

}  // namespace bringup
