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

#include "core/device_memory.h"
#include "core/kv_view.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "device/weight.h"

namespace bringup {

// The largest forward step a model will run: what a device sizes its own working memory by.
struct StepShape {
  int64_t rows = 0;        // rows of a step
  int64_t max_inputs = 0;  // widest linear input (hidden, q_dim or intermediate)
  int64_t q_heads = 0, kv_heads = 0, head_dim = 0;
  int64_t max_seq_len = 0;   // longest sequence attention reads
  bool block_float = false;  // some weight is bfloat8_b / bfloat4_b
};

class Device {
 public:
  virtual ~Device() = default;
  virtual std::string name() const = 0;
  virtual int threads() const = 0;
  // Counting what synchronising the device's threads costs (SyncStats, zeroed when counting
  // starts); a device without host threads counts nothing.
  virtual void time_sync(bool /*on*/) {}
  virtual SyncStats sync_stats() const { return {}; }

  // Memory owned by the device (activations, the KV pool); `bytes` of zeros, released with the
  // handle. Tensor::on(allocate(n), name) gives a device tensor of n bytes.
  virtual DeviceMemory allocate(size_t bytes) = 0;
  // Memory the device could still allocate now (0 when it cannot tell).
  virtual size_t available_memory() const = 0;
  // Host transfers: t's elements to or from host memory (numel floats).
  virtual void write(Tensor& t, std::span<const float> host) = 0;
  virtual void read(const Tensor& t, std::span<float> host) = 0;
  // Working memory the device's kernels take for steps up to `shape` (beside the tensors passed
  // to ops), as it allocates it: what a memory plan counts.
  virtual size_t workspace_bytes(const StepShape& shape) const = 0;

  // Converts one or more host matrices (stacked along the output dimension) into `format` and
  // the layout this device's kernels read. A matrix already in `format` (bfp tiles) is taken code
  // for code, without passing through fp32.
  virtual Weight upload_weight(std::span<const HostMatrix> parts, WeightFormat format) = 0;
  // The packed-weight cache's access to weights in this device's layout. weight_layout() names
  // that layout and changes whenever it does (it is part of the cache key). weight_image() shows
  // a weight's bytes; adopt_weight() makes a weight of an image's layout over `buffers` (in
  // weight_image's order, 64-byte aligned). With an `owner`, they stay valid and unchanged while
  // it lives, and the CPU device reads them where they are (a mapped cache file, no copy);
  // without, or on a device with memory of its own, they are copied. Throws Error for a layout
  // or sizes this device does not make.
  virtual std::string weight_layout() const = 0;
  virtual WeightImage weight_image(const Weight& w) const = 0;
  virtual Weight adopt_weight(std::span<const int64_t> layout,
                              std::span<const std::span<const std::byte>> buffers,
                              std::shared_ptr<const void> owner) = 0;

  virtual void embedding(const Weight& table, std::span<const int32_t> ids, Tensor& out) = 0;
  virtual void linear(const Tensor& x, const Weight& w, const Tensor* bias, Tensor& out) = 0;
  virtual void rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) = 0;
  // cos and sin [T, half] for one position per row: fp32 position times fp32 frequency, times
  // the attention factor, as Hugging Face's rotary embedding computes them. inv_freq holds half
  // frequencies for every row, or T x half, one set per row.
  virtual void rope_tables(std::span<const float> inv_freq, std::span<const int64_t> positions,
                           Tensor& cos, Tensor& sin, float attention_factor) = 0;
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
