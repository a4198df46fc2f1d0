// The decoder model on a device (Qwen2, Llama): batched forward steps written with the op set
// (ops/ops.h) over weights loaded by a family spec, and one paged KV pool for every sequence.
#pragma once

#include <memory>
#include <vector>

#include "bringup/model.h"
#include "device/device.h"
#include "models/activations.h"
#include "models/family.h"
#include "models/memory_plan.h"
#include "models/rope.h"
#include "models/weights.h"
#include "runtime/kv_cache.h"

namespace bringup {

// The model's memory plan on dev; throws Error when the weights, KV pool and buffers would not fit
// in the memory the device has available.
MemoryPlan check_model_fits(const Checkpoint& ck, const Device& dev, const ModelOptions& o);

class DecoderModel final : public Model {
 public:
  // options.kv_budget_tokens must be set (the plan's budget).
  DecoderModel(const Checkpoint& ck, const FamilySpec& family, Device& dev,
               const ModelOptions& options);

  const ModelConfig& config() const override { return config_; }
  Precision precision() const override { return precision_; }
  KvPrecision kv_precision() const override { return kv_precision_; }
  int64_t max_seq_len() const override { return cache_.shape().max_seq_len; }
  size_t weight_bytes() const override { return weights_.bytes(); }
  const WeightCacheReport& weight_cache() const override { return weight_cache_; }
  size_t weight_bytes_per_token() const override;
  size_t kv_cache_bytes() const override { return cache_.bytes(); }
  size_t activation_bytes() const override;

  std::unique_ptr<Sequence> new_sequence() override { return cache_.new_sequence(); }
  std::unique_ptr<Sequence> fork(const Sequence& seq) override { return cache_.fork(seq); }
  KvPoolStats kv_pool() const override;
  int64_t reuse_prefix(Sequence& seq, std::span<const int32_t> tokens) override {
    return cache_.reuse_prefix(seq, tokens);
  }
  void cache_prefix(Sequence& seq, std::span<const int32_t> tokens) override {
    cache_.cache_prefix(seq, tokens);
  }
  int64_t max_step_rows() const override { return max_step_rows_; }
  std::span<const float> step(std::span<const BatchRow> rows) override;
  std::span<const float> prefill(Sequence& seq, std::span<const int32_t> ids,
                                 bool all_positions) override;
  std::span<const float> decode(Sequence& seq, int32_t id) override;
  void set_tap(TapFn fn) override { tap_ = std::move(fn); }

 private:
  // Checks rows, reserves their KV blocks and fills rows_ / positions_ (done once per step).
  void prepare(std::span<const BatchRow> rows);
  // The forward pass over prepared rows; leaves the logits of the flagged rows in logits_.
  void forward(std::span<const BatchRow> rows);
  void tap(Tap::Stage stage, int64_t layer, const Tensor& t);

  ModelConfig config_;
  Precision precision_;
  KvPrecision kv_precision_;
  Device& dev_;
  WeightCacheReport weight_cache_;  // filled by load_weights, before weights_
  Weights weights_;
  KvCache cache_;
  RopeParameters rope_;          // for every row, unless RoPE follows the length (dynamic)
  std::vector<float> row_freq_;  // dynamic: each row's frequencies, for its sequence's length
  int64_t window_;               // positions a row attends back over (0: all)
  int64_t max_step_rows_;
  int64_t max_logit_rows_;
  Activations act_;
  std::vector<KvRow> kv_rows_;       // per row: its sequence's block table and position
  std::vector<int64_t> positions_;   // per row
  std::vector<int32_t> ids_;         // per row
  std::vector<int64_t> logit_rows_;  // rows whose logits are wanted
  std::vector<float> logits_;        // host copy of the step's logits
  std::vector<float> tap_rows_;      // host copy of a tapped tensor
  TapFn tap_;
};

}  // namespace bringup
