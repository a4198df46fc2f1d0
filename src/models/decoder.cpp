#include "models/decoder.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_map>

#include "bringup/error.h"
#include "models/memory_plan.h"
#include "models/weight_cache.h"
#include "ops/ops.h"

namespace bringup {

MemoryPlan check_model_fits(const Checkpoint& ck, const Device& dev, const ModelOptions& o) {
  const MemoryPlan plan = plan_memory(ck, o, dev, dev.available_memory());
  check_fits_in_memory(plan,
                       ck.dir().string() + " under " + std::string(precision_name(o.precision)));
  return plan;
}

DecoderModel::DecoderModel(const Checkpoint& ck, const FamilySpec& family, Device& dev,
                           const ModelOptions& o)
    : config_(ck.config()),
      precision_(o.precision),
      kv_precision_(o.kv_precision),
      dev_(dev),
      weights_(load_weights(ck, family, dev, o.precision,
                            o.weight_cache.empty()
                                ? o.weight_cache
                                : weight_cache_file(o.weight_cache, ck, o.precision),
                            o.map_weight_cache, weight_cache_)),
      cache_(kv_cache_shape(config_, o, cache_dtype(o.precision, o.kv_precision)), dev),
      rope_(rope_parameters(config_)),
      window_(family.attention_window(config_)),
      max_step_rows_(bringup::max_step_rows(o)),
      max_logit_rows_(bringup::max_logit_rows(o)),
      act_(allocate_activations(dev, config_, max_step_rows_, max_logit_rows_)) {
  logits_.reserve(static_cast<size_t>(max_logit_rows_ * config_.vocab_size));  // as planned
}

size_t DecoderModel::activation_bytes() const {
  size_t bytes = 0;
  for (const ActivationSlot& s : activation_slots(config_, max_step_rows_, max_logit_rows_)) {
    bytes += (act_.*s.tensor).capacity_bytes();
  }
  return bytes;
}

size_t DecoderModel::weight_bytes_per_token() const {
  const size_t embed_row = weights_.embed.bytes / static_cast<size_t>(weights_.embed.rows);
  return weights_.bytes() - weights_.embed.bytes +
         weights_.lm_head().bytes * !weights_.lm_head_own + embed_row;
}

KvPoolStats DecoderModel::kv_pool() const {
  return {cache_.shape().block_size,    cache_.num_blocks(),    cache_.free_blocks(),
          cache_.shape().budget_tokens, cache_.cached_blocks(), cache_.prefix_queries(),
          cache_.prefix_hits()};
}

void DecoderModel::tap(Tap::Stage stage, int64_t layer, const Tensor& t) {
  if (!tap_) return;
  tap_rows_.resize(static_cast<size_t>(t.numel()));
  dev_.read(t, tap_rows_);
  tap_(Tap{stage, layer, positions_.empty() ? 0 : positions_[0], t.dim(0), t.dim(1),
           tap_rows_.data()});
}

void DecoderModel::prepare(std::span<const BatchRow> rows) {
  if (rows.empty()) throw Error("a forward step needs at least one row");
  if (static_cast<int64_t>(rows.size()) > max_step_rows_) {
    throw Error("a forward step of " + std::to_string(rows.size()) + " rows exceeds the " +
                std::to_string(max_step_rows_) + " rows a step may hold (prefill_chunk)");
  }
  const auto wanted =
      std::count_if(rows.begin(), rows.end(), [](const BatchRow& r) { return r.logits; });
  if (wanted > max_logit_rows_) {
    throw Error("a forward step asks for the logits of " + std::to_string(wanted) +
                " rows; this model returns at most " + std::to_string(max_logit_rows_) +
                " (max_logit_rows)");
  }
  // Each sequence's rows must continue it in order: its length, then +1 per earlier row.
  std::unordered_map<Sequence*, int64_t> next;
  for (const BatchRow& r : rows) {
    if (r.seq == nullptr || !cache_.owns(*r.seq)) {
      throw Error("a batch row names no sequence of this model");
    }
    if (r.id < 0 || r.id >= config_.vocab_size) {
      throw Error("token id " + std::to_string(r.id) + " is outside the model's vocabulary (0.." +
                  std::to_string(config_.vocab_size - 1) + ")");
    }
    const auto it = next.try_emplace(r.seq, r.seq->length()).first;
    if (r.pos != it->second) {
      throw Error("batch row at position " + std::to_string(r.pos) +
                  " does not continue its sequence, whose next position is " +
                  std::to_string(it->second));
    }
    ++it->second;
  }
  // Every sequence fits before any takes blocks, so a refused step changes nothing.
  for (const auto& entry : next) {
    const int64_t end = entry.second;  // a copy: clang 14 lambdas cannot capture bindings
    check_seq_len(end, max_seq_len(),
                  [&] { return "a sequence growing to " + std::to_string(end) + " positions"; });
  }
  for (const auto& [seq, end] : next) cache_.reserve(*seq, end);
  const size_t t = rows.size();
  kv_rows_.resize(t);
  positions_.resize(t);
  ids_.resize(t);
  logit_rows_.clear();
  for (size_t i = 0; i < t; ++i) {
    const Sequence& s = *rows[i].seq;
    kv_rows_[i] = {s.block_table().data(), static_cast<int64_t>(s.block_table().size()),
                   rows[i].pos, window_ > 0 ? std::max<int64_t>(0, rows[i].pos - window_ + 1) : 0};
    positions_[i] = rows[i].pos;
    ids_[i] = rows[i].id;
    if (rows[i].logits) logit_rows_.push_back(static_cast<int64_t>(i));
  }

  if (rope_depends_on_length(config_)) {
    // As transformers recomputes them per forward call, for the length the call reaches: here
    // each sequence's own, so a row's frequencies do not depend on what shares its step.
    const size_t half = rope_.inv_freq.size();
    row_freq_.resize(t * half);
    std::unordered_map<int64_t, std::vector<float>> by_length;
    for (size_t i = 0; i < t; ++i) {
      const int64_t length = next.at(rows[i].seq);
      auto it = by_length.find(length);
      if (it == by_length.end()) {
        it = by_length.emplace(length, rope_parameters(config_, length).inv_freq).first;
      }
      std::copy(it->second.begin(), it->second.end(), row_freq_.begin() + i * half);
    }
  }
}

// The forward pass, as the reference bring-up writes it with TTNN ops, over the rows of a step.
void DecoderModel::forward(std::span<const BatchRow> rows) {
  const ModelConfig& c = config_;
  const Weights& w = weights_;
  Activations& a = act_;
  Device& dev = dev_;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  if (rope_depends_on_length(c)) {
    ops::rope_tables_per_row(dev, row_freq_, static_cast<int64_t>(rope_.inv_freq.size()),
                             positions_, a.cos, a.sin);
  } else {
    ops::rope_tables(dev, rope_.inv_freq, positions_, a.cos, a.sin, rope_.attention_factor);
  }

  ops::embedding(dev, w.embed, ids_, a.x);
  tap(Tap::Stage::kEmbedding, -1, a.x);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const LayerWeights& L = w.layers[l];
    const KvView kv = cache_.layer(l);
    // Attention block.
    ops::rms_norm(dev, a.x, L.input_norm, eps, a.h);
    ops::linear(dev, a.h, L.qkv, L.bias(), a.qkv);
    ops::create_qkv_heads(dev, a.qkv, c.num_attention_heads, c.num_key_value_heads, c.head_dim, a.q,
                          a.k, a.v);
    ops::rotary_embedding(dev, a.q, a.cos, a.sin);
    ops::rotary_embedding(dev, a.k, a.cos, a.sin);
    ops::paged_update_cache(dev, kv, kv_rows_, a.k, a.v);
    ops::paged_scaled_dot_product_attention(dev, a.q, kv, kv_rows_, scale, a.attn);
    ops::concat_heads(dev, a.attn, a.h);
    ops::linear(dev, a.h, L.o_proj, nullptr, a.o);
    ops::add(dev, a.x, a.o, a.x);
    tap(Tap::Stage::kAfterAttention, l, a.x);
    // MLP block.
    ops::rms_norm(dev, a.x, L.post_norm, eps, a.h);
    ops::linear(dev, a.h, L.gate_up, nullptr, a.gate_up);
    ops::silu_mul(dev, a.gate_up, a.mlp);
    ops::linear(dev, a.mlp, L.down, nullptr, a.o);
    ops::add(dev, a.x, a.o, a.x);
    tap(Tap::Stage::kAfterMlp, l, a.x);
  }
  for (const BatchRow& r : rows) cache_.set_length(*r.seq, r.pos + 1);

  // Only the rows whose logits are wanted go through the final norm and lm_head (every row while
  // a tap watches the final norm), kLogitRows at a time, each piece read back to the host.
  if (tap_) {
    ops::rms_norm(dev, a.x, w.final_norm, eps, a.last);
    tap(Tap::Stage::kFinalNorm, -1, a.last);
  }
  const size_t vocab = static_cast<size_t>(c.vocab_size);
  logits_.resize(logit_rows_.size() * vocab);
  for (size_t i = 0; i < logit_rows_.size(); i += kLogitRows) {
    const size_t n = std::min<size_t>(kLogitRows, logit_rows_.size() - i);
    ops::gather_rows(dev, a.x, std::span(logit_rows_).subspan(i, n), a.h);
    ops::rms_norm(dev, a.h, w.final_norm, eps, a.last);
    ops::linear(dev, a.last, w.lm_head(), nullptr, a.logits);
    dev.read(a.logits, std::span(logits_).subspan(i * vocab, n * vocab));
  }
}

std::span<const float> DecoderModel::step(std::span<const BatchRow> rows) {
  prepare(rows);
  forward(rows);
  return logits_;
}

std::span<const float> DecoderModel::prefill(Sequence& seq, std::span<const int32_t> ids,
                                             bool all_positions) {
  if (ids.empty()) throw Error("prefill needs at least one token id");
  check_seq_len(seq.length() + static_cast<int64_t>(ids.size()), max_seq_len(), [&] {
    return "prompt of " + std::to_string(ids.size()) + " tokens after " +
           std::to_string(seq.length()) + " cached ones";
  });
  const size_t vocab = static_cast<size_t>(config_.vocab_size);
  std::vector<float> all;  // every position's logits, when asked for
  if (all_positions) all.resize(ids.size() * vocab);
  std::vector<BatchRow> rows;
  std::span<const float> logits;
  for (size_t start = 0; start < ids.size(); start += max_step_rows_) {
    const size_t n = std::min<size_t>(max_step_rows_, ids.size() - start);
    rows.resize(n);
    for (size_t i = 0; i < n; ++i) {
      rows[i] = {&seq, ids[start + i], seq.length() + static_cast<int64_t>(i),
                 all_positions || start + i + 1 == ids.size()};
    }
    logits = step(rows);
    if (all_positions) std::copy(logits.begin(), logits.end(), all.begin() + start * vocab);
  }
  if (!all_positions) return logits;
  logits_ = std::move(all);
  return logits_;
}

std::span<const float> DecoderModel::decode(Sequence& seq, int32_t id) {
  const BatchRow row{&seq, id, seq.length(), true};
  return step({&row, 1});
}

std::unique_ptr<Model> build_model(const Checkpoint& ck, Device& dev, const ModelOptions& o) {
  check_checkpoint(ck);
  const FamilySpec& family = family_of(ck.config(), (ck.dir() / "config.json").string());
  const MemoryPlan plan = check_model_fits(ck, dev, o);  // before anything is allocated
  ModelOptions planned = o;
  planned.kv_budget_tokens = plan.kv_budget_tokens;
  return std::make_unique<DecoderModel>(ck, family, dev, planned);
}

std::unique_ptr<Model> build_model(const Checkpoint& ck, Device& dev, int64_t max_seq_len,
                                   Precision precision) {
  ModelOptions o;
  o.max_seq_len = max_seq_len;
  o.precision = precision;
  return build_model(ck, dev, o);
}

}  // namespace bringup
