#include "models/weights.h"

#include <string>

#include "core/dtype.h"
#include "models/weight_cache.h"

namespace bringup {

namespace {

Weight upload(const Checkpoint& ck, Device& dev, const WeightSlot& slot,
              const WeightPolicy& policy) {
  std::vector<HostMatrix> parts;
  for (const std::string& n : slot.names) parts.push_back(HostMatrix::of(ck.tensor(n)));
  Weight w = dev.upload_weight(parts, device_format(policy, slot.group, parts));
  for (const std::string& n : slot.names) ck.release(ck.tensor(n));
  return w;
}

// Biases and norm weights: fp32 device tensors, concatenated, rounded to bf16 under bf16
// policies.
Tensor vector(const Checkpoint& ck, Device& dev, const WeightSlot& slot, bool bf16) {
  std::vector<float> host;
  for (const std::string& name : slot.names) {
    const TensorView& v = ck.tensor(name);
    for (int64_t i = 0; i < v.numel(); ++i) host.push_back(bf16 ? round_to_bf16(v.at(i)) : v.at(i));
  }
  Tensor t = Tensor::on(dev.allocate(host.size() * sizeof(float)), slot.names.front());
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

std::vector<WeightSlot> weight_slots(Weights& w, const ModelConfig& c, const FamilySpec& family,
                                     const WeightPolicy& p) {
  std::vector<WeightSlot> s;
  const std::string embed = "model.embed_tokens.weight";
  s.push_back({&w.embed, nullptr, {embed}, p.embedding});
  if (!c.tie_word_embeddings) {
    w.lm_head_own = std::make_unique<Weight>();
    s.push_back({w.lm_head_own.get(), nullptr, {"lm_head.weight"}, p.lm_head});
  } else if (p.lm_head != p.embedding) {  // tied, but stored in another format
    w.lm_head_own = std::make_unique<Weight>();
    s.push_back({w.lm_head_own.get(), nullptr, {embed}, p.lm_head});
  }
  s.push_back({nullptr, &w.final_norm, {"model.norm.weight"}});
  w.layers.resize(static_cast<size_t>(c.num_hidden_layers));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerTensorNames n = layer_tensor_names(family, l);
    LayerWeights& L = w.layers[static_cast<size_t>(l)];
    s.push_back({nullptr, &L.input_norm, {n.input_norm}});
    s.push_back({&L.qkv, nullptr, {n.q, n.k, n.v}, p.attention});
    if (family.qkv_bias) s.push_back({nullptr, &L.qkv_bias, {n.q_bias, n.k_bias, n.v_bias}});
    s.push_back({&L.o_proj, nullptr, {n.o}, p.attention});
    s.push_back({nullptr, &L.post_norm, {n.post_norm}});
    s.push_back({&L.gate_up, nullptr, {n.gate, n.up}, p.gate_up});
    s.push_back({&L.down, nullptr, {n.down}, p.down});
  }
  return s;
}

Weights load_weights(const Checkpoint& ck, const FamilySpec& family, Device& dev,
                     Precision precision, const std::filesystem::path& cache_file, bool map,
                     WeightCacheReport& report) {
  const WeightPolicy policy = weight_policy(precision);
  Weights w;
  const std::vector<WeightSlot> slots = weight_slots(w, ck.config(), family, policy);
  std::string key;
  if (!cache_file.empty() && !ck.files().empty()) {
    key = weight_cache_key(ck, precision, dev.weight_layout());
    report.file = cache_file;
    report.reason = read_weight_cache(cache_file, key, ck, slots, dev, map);
    if (report.reason.empty()) {
      report.state = WeightCacheReport::State::kLoaded;
      report.mapped = map;
    }
  }
  if (report.state != WeightCacheReport::State::kLoaded) {
    for (const WeightSlot& slot : slots) {
      if (slot.matrix) {
        *slot.matrix = upload(ck, dev, slot, policy);
      } else {
        *slot.vector = vector(ck, dev, slot, policy.vectors_bf16);
      }
    }
    if (!key.empty()) {
      if (report.reason == kNoCacheFile) report.reason.clear();
      std::string failure = write_weight_cache(cache_file, key, slots, dev);
      report.state = failure.empty() ? WeightCacheReport::State::kWritten
                                     : WeightCacheReport::State::kNotWritten;
      if (!failure.empty()) report.reason = failure;
    }
  }
  if (report.state == WeightCacheReport::State::kLoaded ||
      report.state == WeightCacheReport::State::kWritten) {
    std::error_code ec;
    report.bytes = std::filesystem::file_size(cache_file, ec);
  }
  const size_t per_value = policy.vectors_bf16 ? 2 : 4;
  for (const WeightSlot& slot : slots) {
    if (slot.vector) w.vector_bytes += static_cast<size_t>(slot.vector->numel()) * per_value;
  }
  return w;
}

}  // namespace bringup
