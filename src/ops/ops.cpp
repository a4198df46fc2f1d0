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

void expect_kv(const char* op, const Tensor& q, const KvView& kv, int64_t last_pos) {
  expect_rank(op, "q", q, 3);
  if (q.dim(0) % kv.kv_heads != 0 || q.dim(2) != kv.head_dim) {
    bad_shape(op, "q " + q.shape_string() + " does not fit " + std::to_string(kv.kv_heads) +
                      " KV heads of size " + std::to_string(kv.head_dim));
  }
  if (last_pos >= kv.capacity()) {
    bad_shape(op, "position " + std::to_string(last_pos) + " is beyond the cache's " +
                      std::to_string(kv.capacity()) + " positions");
  }
}

void expect_cache_update(const char* op, const KvView& kv, const Tensor& k, const Tensor& v,
                         int64_t pos0) {
  expect_rank(op, "k", k, 3);
  if (k.shape() != v.shape() || k.dim(0) != kv.kv_heads || k.dim(2) != kv.head_dim) {
    bad_shape(op, "k " + k.shape_string() + " / v " + v.shape_string() + " do not match the cache");
  }
  if (pos0 < 0 || pos0 + k.dim(1) > kv.capacity()) {
    bad_shape(op, "positions " + std::to_string(pos0) + ".." + std::to_string(pos0 + k.dim(1)) +
                      " exceed the cache's " + std::to_string(kv.capacity()));
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

void scaled_dot_product_attention(Device& dev, const Tensor& q, const KvView& kv, int64_t pos0,
                                  float scale, Tensor& out) {
  expect_kv("scaled_dot_product_attention", q, kv, pos0 + q.dim(1) - 1);
  out.resize(q.shape());
  dev.scaled_dot_product_attention(q, kv, pos0, scale, out);
}

void scaled_dot_product_attention_decode(Device& dev, const Tensor& q, const KvView& kv,
                                         int64_t pos, float scale, Tensor& out) {
  expect_kv("scaled_dot_product_attention_decode", q, kv, pos);
  if (q.dim(1) != 1) bad_shape("scaled_dot_product_attention_decode", "q must hold one position");
  out.resize(q.shape());
  dev.scaled_dot_product_attention_decode(q, kv, pos, scale, out);
}

void fill_cache(Device& dev, const KvView& kv, const Tensor& k, const Tensor& v, int64_t pos0) {
  expect_cache_update("fill_cache", kv, k, v, pos0);
  dev.fill_cache(kv, k, v, pos0);
}

void paged_update_cache(Device& dev, const KvView& kv, const Tensor& k, const Tensor& v,
                        int64_t pos) {
  expect_cache_update("paged_update_cache", kv, k, v, pos);
  if (k.dim(1) != 1) bad_shape("paged_update_cache", "k and v must hold one position");
  dev.paged_update_cache(kv, k, v, pos);
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

void rope_tables(std::span<const float> inv_freq, int64_t pos0, int64_t t, Tensor& cos,
                 Tensor& sin) {
  const int64_t half = static_cast<int64_t>(inv_freq.size());
  cos.resize({t, half});
  sin.resize({t, half});
  for (int64_t r = 0; r < t; ++r) {
    const float pos = static_cast<float>(pos0 + r);
    for (int64_t i = 0; i < half; ++i) {
      const float angle = pos * inv_freq[i];  // rounded to fp32 as in the reference
      cos.row(r)[i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      sin.row(r)[i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
}

}  // namespace bringup::ops
