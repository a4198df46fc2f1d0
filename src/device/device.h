// The device interface: the op set a backend implements. Model code calls these through
// ops/ops.h, which checks shapes first; the CPU backend (device/cpu_device.cpp) runs them with the
// kernels in kernels/cpu. Activations are fp32 tensors; layouts follow TTNN:
//   hidden states      [T, hidden]
//   heads              [heads, T, head_dim]
//   fused projections  [T, q + k + v] and [T, gate + up]
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/kv_view.h"
#include "core/tensor.h"
#include "device/weight.h"

namespace bringup {

// A device allocation. Model and runtime code pass it to ops as it is and never read it; only
// the backend that made it knows what `data` points at.
class DeviceMemory {
 public:
  struct Storage {
    virtual ~Storage() = default;
  };
  DeviceMemory() = default;
  DeviceMemory(std::unique_ptr<Storage> s, void* data, size_t bytes)
      : storage_(std::move(s)), data_(data), bytes_(bytes) {}
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  std::unique_ptr<Storage> storage_;
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

class Device {
 public:
  virtual ~Device() = default;
  virtual std::string name() const = 0;
  virtual int threads() const = 0;

  // Memory owned by the device (the KV pool); `bytes` of zeros, released with the handle.
  virtual DeviceMemory allocate(size_t bytes) = 0;

  // Converts one or more host matrices (stacked along the output dimension) into `format` and
  // the layout this device's kernels read.
  virtual Weight upload_weight(std::span<const HostMatrix> parts, WeightFormat format) = 0;

  virtual void embedding(const Weight& table, std::span<const int32_t> ids, Tensor& out) = 0;
  virtual void linear(const Tensor& x, const Weight& w, const Tensor* bias, Tensor& out) = 0;
  virtual void rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) = 0;
  virtual void rotary_embedding(Tensor& x, const Tensor& cos, const Tensor& sin) = 0;
  virtual void create_qkv_heads(const Tensor& qkv, Tensor& q, Tensor& k, Tensor& v) = 0;
  virtual void concat_heads(const Tensor& heads, Tensor& out) = 0;
  // Row r of k and v ([kv_heads, T, head_dim]) into position rows[r].pos of that row's sequence.
  virtual void paged_update_cache(const KvView& layer, std::span<const KvRow> rows, const Tensor& k,
                                  const Tensor& v) = 0;
  // Row r of q ([q_heads, T, head_dim]) attends to positions 0..rows[r].pos of its own sequence,
  // causal by construction. A row's result does not depend on the other rows.
  virtual void paged_scaled_dot_product_attention(const Tensor& q, const KvView& layer,
                                                  std::span<const KvRow> rows, float scale,
                                                  Tensor& out) = 0;
  // Copies KV block `from` to block `to` in one layer (copy-on-write of a shared block).
  virtual void copy_cache_block(const KvView& layer, int32_t from, int32_t to) = 0;
  // out[i] = x[rows[i]] for rows of a [T, n] tensor (the rows whose logits a step returns).
  virtual void gather_rows(const Tensor& x, std::span<const int64_t> rows, Tensor& out) = 0;
  virtual void silu_mul(const Tensor& gate_up, Tensor& out) = 0;
  virtual void add(const Tensor& a, const Tensor& b, Tensor& out) = 0;
};

}  // namespace bringup
