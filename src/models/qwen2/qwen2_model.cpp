#include "models/qwen2/qwen2_model.h"

#include <cmath>
#include <cstring>
#include <string>

#include "bringup/error.h"
#include "ops/ops.h"
#include "runtime/memory_plan.h"

namespace bringup::qwen2 {

namespace {

KvCacheShape cache_shape(const ModelConfig& c, const ModelOptions& o, CacheDType dtype) {
  const int64_t max_len = checked_max_seq_len(c, o.max_seq_len);
  if (o.max_sequences < 1) throw Error("max_sequences must be at least 1");
  return {c.num_hidden_layers,
          c.num_key_value_heads,
          c.head_dim,
          o.kv_block_size,
          max_len,
          o.max_sequences,
          dtype};
}

}  // namespace

void check_model_fits(const Checkpoint& ck, const Device& dev, const ModelOptions& o) {
  const KvCacheShape kv = cache_shape(ck.config(), o, CacheDType::kBf16);
  const MemoryPlan plan = plan_memory(ck.config(), o.precision, kv.max_seq_len, o.max_sequences,
                                      dev.threads(), o.prefill_chunk, o.kv_block_size);
  check_fits_in_memory(plan,
                       ck.dir().string() + " under " + std::string(precision_name(o.precision)));
}

Qwen2Model::Qwen2Model(const Checkpoint& ck, Device& dev, const ModelOptions& o)
    : config_(ck.config()),
      precision_(o.precision),
      dev_(dev),
      weights_(load_weights(ck, dev, weight_policy(o.precision))),
      cache_(cache_shape(config_, o, weight_policy(o.precision).cache)),
      inv_freq_(ops::rope_inv_freq(config_.head_dim, config_.rope_theta)),
      prefill_chunk_(o.prefill_chunk > 0 ? o.prefill_chunk : 512) {}

size_t Qwen2Model::weight_bytes_per_token() const {
  const size_t embed_row = weights_.embed.bytes / static_cast<size_t>(weights_.embed.rows);
  return weights_.bytes() - weights_.embed.bytes +
         weights_.lm_head().bytes * !weights_.lm_head_own + embed_row;
}

void Qwen2Model::check_ids(std::span<const int32_t> ids) const {
  for (int32_t id : ids) {
    if (id < 0 || id >= config_.vocab_size) {
      throw Error("token id " + std::to_string(id) + " is outside the model's vocabulary (0.." +
                  std::to_string(config_.vocab_size - 1) + ")");
    }
  }
}

void Qwen2Model::tap(Tap::Stage stage, int64_t layer, int64_t pos0, const Tensor& t) {
  if (tap_) tap_(Tap{stage, layer, pos0, t.dim(0), t.dim(1), t.data()});
}

void Qwen2Model::forward(Sequence& seq, std::span<const int32_t> ids, int64_t logit_rows) {
  const ModelConfig& c = config_;
  const Weights& w = weights_;
  Activations& a = act_;
  Device& dev = dev_;
  const int64_t pos0 = seq.length(), t = static_cast<int64_t>(ids.size());
  const float eps = static_cast<float>(c.rms_norm_eps);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  cache_.reserve(seq, pos0 + t);
  ops::rope_tables(inv_freq_, pos0, t, a.cos, a.sin);

  ops::embedding(dev, w.embed, ids, a.x);
  tap(Tap::Stage::kEmbedding, -1, pos0, a.x);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerWeights& L = w.layers[l];
    const KvView kv = cache_.view(seq, l);
    // Attention block.
    ops::rms_norm(dev, a.x, L.input_norm, eps, a.h);
    ops::linear(dev, a.h, L.qkv, &L.qkv_bias, a.qkv);
    ops::create_qkv_heads(dev, a.qkv, c.num_attention_heads, c.num_key_value_heads, c.head_dim, a.q,
                          a.k, a.v);
    ops::rotary_embedding(dev, a.q, a.cos, a.sin);
    ops::rotary_embedding(dev, a.k, a.cos, a.sin);
    if (t == 1) {
      ops::paged_update_cache(dev, kv, a.k, a.v, pos0);
      ops::scaled_dot_product_attention_decode(dev, a.q, kv, pos0, scale, a.attn);
    } else {
      ops::fill_cache(dev, kv, a.k, a.v, pos0);
      ops::scaled_dot_product_attention(dev, a.q, kv, pos0, scale, a.attn);
    }
    ops::concat_heads(dev, a.attn, a.h);
    ops::linear(dev, a.h, L.o_proj, nullptr, a.o);
    ops::add(dev, a.x, a.o, a.x);
    tap(Tap::Stage::kAfterAttention, l, pos0, a.x);
    // MLP block.
    ops::rms_norm(dev, a.x, L.post_norm, eps, a.h);
    ops::linear(dev, a.h, L.gate_up, nullptr, a.gate_up);
    ops::silu_mul(dev, a.gate_up, a.mlp);
    ops::linear(dev, a.mlp, L.down, nullptr, a.o);
    ops::add(dev, a.x, a.o, a.x);
    tap(Tap::Stage::kAfterMlp, l, pos0, a.x);
  }
  cache_.set_length(seq, pos0 + t);

  // Only the rows whose logits are wanted go through the final norm and lm_head.
  const int64_t first = tap_ ? 0 : t - logit_rows;
  a.last.resize({t - first, c.hidden_size});
  std::memcpy(a.last.data(), a.x.row(first), a.last.numel() * sizeof(float));
  ops::rms_norm(dev, a.last, w.final_norm, eps, a.last);
  tap(Tap::Stage::kFinalNorm, -1, pos0 + first, a.last);
  if (first != t - logit_rows) {
    std::memmove(a.last.data(), a.last.row(t - logit_rows - first),
                 logit_rows * c.hidden_size * sizeof(float));
    a.last.resize({logit_rows, c.hidden_size});
  }
  ops::linear(dev, a.last, w.lm_head(), nullptr, a.logits);
}

std::span<const float> Qwen2Model::prefill(Sequence& seq, std::span<const int32_t> ids,
                                           bool all_positions) {
  if (ids.empty()) throw Error("prefill needs at least one token id");
  check_ids(ids);
  const int64_t total = seq.length() + static_cast<int64_t>(ids.size());
  if (total > max_seq_len()) {
    throw Error("prompt of " + std::to_string(ids.size()) + " tokens after " +
                std::to_string(seq.length()) + " cached ones exceeds max_seq_len " +
                std::to_string(max_seq_len()) + " (raise --max-seq-len)");
  }
  const int64_t vocab = config_.vocab_size;
  if (all_positions) all_logits_.resize(ids.size() * vocab);
  for (size_t start = 0; start < ids.size(); start += prefill_chunk_) {
    const auto chunk = ids.subspan(start, std::min<size_t>(prefill_chunk_, ids.size() - start));
    const int64_t rows = all_positions ? static_cast<int64_t>(chunk.size()) : 1;
    forward(seq, chunk, rows);
    if (all_positions) {
      std::memcpy(all_logits_.data() + start * vocab, act_.logits.data(),
                  chunk.size() * vocab * sizeof(float));
    }
  }
  if (all_positions) return all_logits_;
  return {act_.logits.data(), static_cast<size_t>(vocab)};
}

std::span<const float> Qwen2Model::decode(Sequence& seq, int32_t id) {
  check_ids({&id, 1});
  if (seq.length() + 1 > max_seq_len()) {
    throw Error("decoding past max_seq_len " + std::to_string(max_seq_len()) +
                " (raise --max-seq-len)");
  }
  forward(seq, {&id, 1}, 1);
  return {act_.logits.data(), static_cast<size_t>(config_.vocab_size)};
}

}  // namespace bringup::qwen2

namespace bringup {

std::unique_ptr<Model> build_model(const Checkpoint& ck, Device& dev, const ModelOptions& o) {
  if (ck.config().model_type != "qwen2") {
    throw Error("model_type '" + ck.config().model_type + "' is not supported");
  }
  qwen2::check_model_fits(ck, dev, o);  // before anything is allocated
  return std::make_unique<qwen2::Qwen2Model>(ck, dev, o);
}

std::unique_ptr<Model> build_model(const Checkpoint& ck, Device& dev, int64_t max_seq_len,
                                   Precision precision) {
  ModelOptions o;
  o.max_seq_len = max_seq_len;
  o.precision = precision;
  return build_model(ck, dev, o);
}

}  // namespace bringup
