// Qwen2 on a device: the forward pass written with the op set (ops/ops.h).
#pragma once

#include <memory>
#include <vector>

#include "bringup/model.h"
#include "device/device.h"
#include "models/qwen2/qwen2_weights.h"
#include "runtime/kv_cache.h"

namespace bringup::qwen2 {

// The activations of one forward pass, sized once and reused.
struct Activations {
  Tensor x;             // residual stream [T, hidden]
  Tensor h;             // normed input of a block / concatenated heads
  Tensor qkv, q, k, v;  // fused projection and its heads
  Tensor attn;          // attention output heads
  Tensor o;             // output of o_proj / down_proj
  Tensor gate_up, mlp;  // MLP
  Tensor cos, sin;      // rotary tables for this pass's positions
  Tensor last, logits;  // final-normed rows and their logits
};

// Throws Error when the weights, KV cache and buffers would not fit in the memory available.
void check_model_fits(const Checkpoint& ck, const Device& dev, const ModelOptions& o);

class Qwen2Model final : public Model {
 public:
  Qwen2Model(const Checkpoint& ck, Device& dev, const ModelOptions& options);

  const ModelConfig& config() const override { return config_; }
  Precision precision() const override { return precision_; }
  int64_t max_seq_len() const override { return cache_.shape().max_seq_len; }
  size_t weight_bytes() const override { return weights_.bytes(); }
  size_t weight_bytes_per_token() const override;
  size_t kv_cache_bytes() const override { return cache_.bytes(); }

  std::unique_ptr<Sequence> new_sequence() override { return cache_.new_sequence(); }
  std::span<const float> prefill(Sequence& seq, std::span<const int32_t> ids,
                                 bool all_positions) override;
  std::span<const float> decode(Sequence& seq, int32_t id) override;
  void set_tap(TapFn fn) override { tap_ = std::move(fn); }

 private:
  // Runs ids at positions seq.length().. and appends them to seq. Leaves the logits of the last
  // `logit_rows` positions in act_.logits.
  void forward(Sequence& seq, std::span<const int32_t> ids, int64_t logit_rows);
  void check_ids(std::span<const int32_t> ids) const;
  void tap(Tap::Stage stage, int64_t layer, int64_t pos0, const Tensor& t);

  ModelConfig config_;
  Precision precision_;
  Device& dev_;
  Weights weights_;
  KvCache cache_;
  std::vector<float> inv_freq_;
  int64_t prefill_chunk_;
  Activations act_;
  std::vector<float> all_logits_;
  TapFn tap_;
};

}  // namespace bringup::qwen2
