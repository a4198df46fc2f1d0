#include "models/activations.h"

#include <algorithm>

#include "bringup/error.h"

namespace bringup {

int64_t max_step_rows(const ModelOptions& o) {
  if (o.prefill_chunk < 0) throw Error("prefill_chunk must not be negative");
  return o.prefill_chunk > 0 ? o.prefill_chunk : 512;
}

int64_t max_logit_rows(const ModelOptions& o) {
  if (o.max_logit_rows < 0) throw Error("max_logit_rows must not be negative");
  const int64_t rows = max_step_rows(o);
  return o.max_logit_rows > 0 ? std::min(o.max_logit_rows, rows) : rows;
}

std::vector<ActivationSlot> activation_slots(const ModelConfig& c, int64_t t, int64_t logit_rows) {
  const int64_t h = c.hidden_size, q = c.q_dim(), kv = c.kv_dim(), im = c.intermediate_size;
  using A = Activations;
  return {{"x", &A::x, t * h},
          {"h", &A::h, t * std::max(h, q)},
          {"qkv", &A::qkv, t * (q + 2 * kv)},
          {"q", &A::q, t * q},
          {"k", &A::k, t * kv},
          {"v", &A::v, t * kv},
          {"attn", &A::attn, t * q},
          {"o", &A::o, t * h},
          {"gate_up", &A::gate_up, t * 2 * im},
          {"mlp", &A::mlp, t * im},
          {"cos", &A::cos, t * (c.head_dim / 2)},
          {"sin", &A::sin, t * (c.head_dim / 2)},
          {"last", &A::last, t * h},
          {"logits", &A::logits, std::min(logit_rows, kLogitRows) * c.vocab_size}};
}

size_t activation_bytes(const ModelConfig& c, int64_t rows, int64_t logit_rows) {
  size_t bytes = 0;
  for (const ActivationSlot& s : activation_slots(c, rows, logit_rows)) {
    bytes += static_cast<size_t>(s.floats) * sizeof(float);
  }
  return bytes;
}

Activations allocate_activations(Device& dev, const ModelConfig& c, int64_t rows,
                                 int64_t logit_rows) {
  Activations a;
  for (const ActivationSlot& s : activation_slots(c, rows, logit_rows)) {
    a.*s.tensor = Tensor::on(dev.allocate(static_cast<size_t>(s.floats) * sizeof(float)), s.name);
  }
  return a;
}

}  // namespace bringup
