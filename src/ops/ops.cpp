#include "ops/ops.h"

#include <cmath>
#include <string>

#include "bringup/error.h"

namespace bringup::ops {

namespace {

[[noreturn]] void bad_shape(const char* op, const std::string& what) {
  throw Error(std::string(op) + ": " + what);
}

void expect_rank(const char* op, const char* name, const Tensor& t, int rank) {
  if (t.rank() != rank) {
    bad_shape(op, std::string(name) + " has shape " + t.shape_string() + ", expected rank " +
                      std::to_string(rank));
  }
}

void expect_kv(const char* op, const Tensor& q, const KvView& kv) {
  expect_rank(op, "q", q, 3);
  if (q.dim(0) % kv.kv_heads != 0 || q.dim(2) != kv.head_dim) {
    bad_shape(op, "q " + q.shape_string() + " does not fit " + std::to_string(kv.kv_heads) +
                      " KV heads of size " + std::to_string(kv.head_dim));
  }
}

void expect_cache_update(const char* op, const KvView& kv, const Tensor& k, const Tensor& v) {
  expect_rank(op, "k", k, 3);
  if (k.shape() != v.shape() || k.dim(0) != kv.kv_heads || k.dim(2) != kv.head_dim) {
    bad_shape(op, "k " + k.shape_string() + " / v " + v.shape_string() + " do not match the cache");
  }
}

// One KvRow per position of x ([heads, T, head_dim]), each inside its own block table.
void expect_rows(const char* op, const KvView& layer, const Tensor& x,
                 std::span<const KvRow> rows) {
  if (static_cast<int64_t>(rows.size()) != x.dim(1)) {
    bad_shape(op,
              std::to_string(rows.size()) + " rows for " + std::to_string(x.dim(1)) + " positions");
  }
  for (const KvRow& r : rows) {
    const int64_t capacity = r.table_blocks * layer.block_size;
    if (r.pos < 0 || r.block_table == nullptr || r.pos >= capacity) {
      bad_shape(op, "position " + std::to_string(r.pos) + " is beyond its sequence's " +
                        std::to_string(capacity) + " cache positions");
    }
  }
}

}  // namespace

void embedding(Device& dev, const Weight& table, std::span<const int32_t> ids, Tensor& out) {
  for (int32_t id : ids) {
    if (id < 0 || id >= table.rows) {
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                  std::to_string(table.rows - 1) + ")");
    }
  }
  out.resize({static_cast<int64_t>(ids.size()), table.cols});
  dev.embedding(table, ids, out);
}

void linear(Device& dev, const Tensor& x, const Weight& w, const Tensor* bias, Tensor& out) {
  expect_rank("linear", "x", x, 2);
  if (x.dim(1) != w.cols) {
    bad_shape("linear", "x " + x.shape_string() + " has " + std::to_string(x.dim(1)) +
                            " features, the weight expects " + std::to_string(w.cols));
  }
  if (bias && bias->numel() != w.rows) bad_shape("linear", "bias does not match the weight rows");
  out.resize({x.dim(0), w.rows});
  dev.linear(x, w, bias, out);
}

void rms_norm(Device& dev, const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
  if (weight.numel() != x.dim(-1))
    bad_shape("rms_norm", "weight does not match x " + x.shape_string());
  out.resize(x.shape());
  dev.rms_norm(x, weight, eps, out);
}

void rotary_embedding(Device& dev, Tensor& x, const Tensor& cos, const Tensor& sin) {
  expect_rank("rotary_embedding", "x", x, 3);
  if (cos.rank() != 2 || cos.shape() != sin.shape() || cos.dim(0) != x.dim(1) ||
      cos.dim(1) * 2 != x.dim(2)) {
    bad_shape("rotary_embedding",
              "cos/sin " + cos.shape_string() + " do not fit x " + x.shape_string());
  }
  dev.rotary_embedding(x, cos, sin);
}

void create_qkv_heads(Device& dev, const Tensor& qkv, int64_t q_heads, int64_t kv_heads,
                      int64_t head_dim, Tensor& q, Tensor& k, Tensor& v) {
  expect_rank("create_qkv_heads", "qkv", qkv, 2);
  if (qkv.dim(1) != (q_heads + 2 * kv_heads) * head_dim) {
    bad_shape("create_qkv_heads",
              "qkv " + qkv.shape_string() + " does not hold " + std::to_string(q_heads) +
                  " + 2 x " + std::to_string(kv_heads) + " heads of " + std::to_string(head_dim));
  }
  const int64_t t = qkv.dim(0);
  q.resize({q_heads, t, head_dim});
  k.resize({kv_heads, t, head_dim});
  v.resize({kv_heads, t, head_dim});
  dev.create_qkv_heads(qkv, q, k, v);
}

void concat_heads(Device& dev, const Tensor& heads, Tensor& out) {
  expect_rank("concat_heads", "heads", heads, 3);
  out.resize({heads.dim(1), heads.dim(0) * heads.dim(2)});
  dev.concat_heads(heads, out);
}

void paged_update_cache(Device& dev, const KvView& layer, std::span<const KvRow> rows,
                        const Tensor& k, const Tensor& v) {
  expect_cache_update("paged_update_cache", layer, k, v);
  expect_rows("paged_update_cache", layer, k, rows);
  dev.paged_update_cache(layer, rows, k, v);
}

void paged_scaled_dot_product_attention(Device& dev, const Tensor& q, const KvView& layer,
                                        std::span<const KvRow> rows, float scale, Tensor& out) {
  expect_kv("paged_scaled_dot_product_attention", q, layer);
  expect_rows("paged_scaled_dot_product_attention", layer, q, rows);
  out.resize(q.shape());
  dev.paged_scaled_dot_product_attention(q, layer, rows, scale, out);
}

namespace {

// The rows of one sequence at positions pos0, pos0 + 1, ...
std::vector<KvRow> sequence_rows(const KvView& kv, int64_t pos0, int64_t t) {
  std::vector<KvRow> rows(t);
  for (int64_t r = 0; r < t; ++r) rows[r] = {kv.block_table, kv.table_blocks, pos0 + r};
  return rows;
}

}  // namespace

void scaled_dot_product_attention(Device& dev, const Tensor& q, const KvView& kv, int64_t pos0,
                                  float scale, Tensor& out) {
  expect_rank("scaled_dot_product_attention", "q", q, 3);
  paged_scaled_dot_product_attention(dev, q, kv, sequence_rows(kv, pos0, q.dim(1)), scale, out);
}

void scaled_dot_product_attention_decode(Device& dev, const Tensor& q, const KvView& kv,
                                         int64_t pos, float scale, Tensor& out) {
  expect_rank("scaled_dot_product_attention_decode", "q", q, 3);
  if (q.dim(1) != 1) bad_shape("scaled_dot_product_attention_decode", "q must hold one position");
  paged_scaled_dot_product_attention(dev, q, kv, sequence_rows(kv, pos, 1), scale, out);
}

void fill_cache(Device& dev, const KvView& kv, const Tensor& k, const Tensor& v, int64_t pos0) {
  expect_rank("fill_cache", "k", k, 3);
  paged_update_cache(dev, kv, sequence_rows(kv, pos0, k.dim(1)), k, v);
}

void paged_update_cache(Device& dev, const KvView& kv, const Tensor& k, const Tensor& v,
                        int64_t pos) {
  expect_rank("paged_update_cache", "k", k, 3);
  if (k.dim(1) != 1) bad_shape("paged_update_cache", "k and v must hold one position");
  paged_update_cache(dev, kv, sequence_rows(kv, pos, 1), k, v);
}

void gather_rows(Device& dev, const Tensor& x, std::span<const int64_t> rows, Tensor& out) {
  expect_rank("gather_rows", "x", x, 2);
  for (int64_t r : rows) {
    if (r < 0 || r >= x.dim(0)) {
      bad_shape("gather_rows", "row " + std::to_string(r) + " is outside x " + x.shape_string());
    }
  }
  out.resize({static_cast<int64_t>(rows.size()), x.dim(1)});
  dev.gather_rows(x, rows, out);
}

void silu_mul(Device& dev, const Tensor& gate_up, Tensor& out) {
  expect_rank("silu_mul", "gate_up", gate_up, 2);
  if (gate_up.dim(1) % 2 != 0) bad_shape("silu_mul", "gate_up must have an even width");
  out.resize({gate_up.dim(0), gate_up.dim(1) / 2});
  dev.silu_mul(gate_up, out);
}

void add(Device& dev, const Tensor& a, const Tensor& b, Tensor& out) {
  if (a.shape() != b.shape()) {
    bad_shape("add", a.shape_string() + " and " + b.shape_string() + " differ");
  }
  if (&out != &a && &out != &b) out.resize(a.shape());
  dev.add(a, b, out);
}

std::vector<float> rope_inv_freq(int64_t head_dim, double theta) {
  std::vector<float> inv(head_dim / 2);
  const float base = static_cast<float>(theta);
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    // torch: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all in fp32
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    const float p = static_cast<float>(std::pow(static_cast<double>(base), double{exponent}));
    inv[i] = 1.0f / p;
  }
  return inv;
}

namespace {

void rope_tables_of(Device& dev, std::span<const float> inv_freq, int64_t half,
                    std::span<const int64_t> positions, Tensor& cos, Tensor& sin,
                    float attention_factor) {
  for (int64_t p : positions) {
    if (p < 0) bad_shape("rope_tables", "position " + std::to_string(p) + " is negative");
  }
  const int64_t t = static_cast<int64_t>(positions.size());
  cos.resize({t, half});
  sin.resize({t, half});
  dev.rope_tables(inv_freq, positions, cos, sin, attention_factor);
}

}  // namespace

void rope_tables(Device& dev, std::span<const float> inv_freq, std::span<const int64_t> positions,
                 Tensor& cos, Tensor& sin, float attention_factor) {
  rope_tables_of(dev, inv_freq, static_cast<int64_t>(inv_freq.size()), positions, cos, sin,
                 attention_factor);
}

void rope_tables_per_row(Device& dev, std::span<const float> inv_freq, int64_t half,
                         std::span<const int64_t> positions, Tensor& cos, Tensor& sin) {
  if (static_cast<int64_t>(inv_freq.size()) != half * static_cast<int64_t>(positions.size())) {
    bad_shape("rope_tables_per_row", std::to_string(inv_freq.size()) + " frequencies for " +
                                         std::to_string(positions.size()) + " rows of " +
                                         std::to_string(half));
  }
  rope_tables_of(dev, inv_freq, half, positions, cos, sin, 1.0f);
}

}  // namespace bringup::ops
