// The device interface: the op set a backend implements. Model code calls these through
// ops/ops.h, which checks shapes first; the CPU backend (device/cpu_device.cpp) runs them with the
// kernels in kernels/cpu. Activations are fp32 tensors; layouts follow TTNN:
//   hidden states      [T, hidden]
//   heads              [heads, T, head_dim]
//   fused projections  [T, q + k + v] and [T, gate + up]
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "core/tensor.h"
#include "device/kv_view.h"
#include "device/weight.h"

namespace bringup {

class Device {
 public:
  virtual ~Device() = default;
  virtual std::string name() const = 0;
  virtual int threads() const = 0;

  // Converts one or more host matrices (stacked along the output dimension) into `format` and
  // the layout this device's kernels read.
  virtual Weight upload_weight(std::span<const HostMatrix> parts, WeightFormat format) = 0;

  virtual void embedding(const Weight& table, std::span<const int32_t> ids, Tensor& out) = 0;
  virtual void linear(const Tensor& x, const Weight& w, const Tensor* bias, Tensor& out) = 0;
  virtual void rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) = 0;
  virtual void rotary_embedding(Tensor& x, const Tensor& cos, const Tensor& sin) = 0;
  virtual void create_qkv_heads(const Tensor& qkv, Tensor& q, Tensor& k, Tensor& v) = 0;
  virtual void concat_heads(const Tensor& heads, Tensor& out) = 0;
  virtual void scaled_dot_product_attention(const Tensor& q, const KvView& kv, int64_t pos0,
                                            float scale, Tensor& out) = 0;
  virtual void scaled_dot_product_attention_decode(const Tensor& q, const KvView& kv, int64_t pos,
                                                   float scale, Tensor& out) = 0;
  virtual void fill_cache(const KvView& kv, const Tensor& k, const Tensor& v, int64_t pos0) = 0;
  virtual void paged_update_cache(const KvView& kv, const Tensor& k, const Tensor& v,
                                  int64_t pos) = 0;
  virtual void silu_mul(const Tensor& gate_up, Tensor& out) = 0;
  virtual void add(const Tensor& a, const Tensor& b, Tensor& out) = 0;
};

}  // namespace bringup
