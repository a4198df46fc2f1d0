// The op set of the bring-up, as TTNN names them. Each checks its arguments' shapes, sizes its
// output, and runs on the given device. Shapes:
//   embedding                 ids[T] -> [T, hidden]
//   linear                    [M, K] x Weight[N, K] (+ bias[N]) -> [M, N]
//   rms_norm                  [T, n] -> [T, n]
//   rope_tables               positions[T] -> cos, sin [T, head_dim / 2]
//   rotary_embedding          [heads, T, head_dim] in place, cos/sin [T, head_dim / 2]
//   create_qkv_heads          [T, (q_heads + 2 kv_heads) * head_dim] -> q [q_heads, T, head_dim],
//                             k, v [kv_heads, T, head_dim]
//   concat_heads              [heads, T, head_dim] -> [T, heads * head_dim]
//   scaled_dot_product_attention         q [q_heads, T, head_dim] at positions pos0.. over the
//                                        cache, causal -> [q_heads, T, head_dim]
//   scaled_dot_product_attention_decode  q [q_heads, 1, head_dim] at position pos
//   fill_cache                k, v [kv_heads, T, head_dim] into positions pos0.. of the cache
//   paged_update_cache        k, v [kv_heads, 1, head_dim] into position pos
//   batched forms, one KvRow (block table, position) per row of a step that mixes sequences:
//   paged_update_cache                   k, v [kv_heads, T, head_dim], row r at rows[r].pos
//   paged_scaled_dot_product_attention   q [q_heads, T, head_dim], row r over 0..rows[r].pos
//   gather_rows               [T, n], row indices [R] -> [R, n]
//   silu_mul                  [T, 2 * n] (gate then up) -> [T, n]
//   add                       [.., n] + [.., n]
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/tensor.h"
#include "device/device.h"

namespace bringup::ops {

void embedding(Device& dev, const Weight& table, std::span<const int32_t> ids, Tensor& out);
void linear(Device& dev, const Tensor& x, const Weight& w, const Tensor* bias, Tensor& out);
void rms_norm(Device& dev, const Tensor& x, const Tensor& weight, float eps, Tensor& out);
void rotary_embedding(Device& dev, Tensor& x, const Tensor& cos, const Tensor& sin);
void create_qkv_heads(Device& dev, const Tensor& qkv, int64_t q_heads, int64_t kv_heads,
                      int64_t head_dim, Tensor& q, Tensor& k, Tensor& v);
void concat_heads(Device& dev, const Tensor& heads, Tensor& out);
void scaled_dot_product_attention(Device& dev, const Tensor& q, const KvView& kv, int64_t pos0,
                                  float scale, Tensor& out);
void scaled_dot_product_attention_decode(Device& dev, const Tensor& q, const KvView& kv,
                                         int64_t pos, float scale, Tensor& out);
void fill_cache(Device& dev, const KvView& kv, const Tensor& k, const Tensor& v, int64_t pos0);
void paged_update_cache(Device& dev, const KvView& kv, const Tensor& k, const Tensor& v,
                        int64_t pos);
void paged_update_cache(Device& dev, const KvView& layer, std::span<const KvRow> rows,
                        const Tensor& k, const Tensor& v);
void paged_scaled_dot_product_attention(Device& dev, const Tensor& q, const KvView& layer,
                                        std::span<const KvRow> rows, float scale, Tensor& out);
void gather_rows(Device& dev, const Tensor& x, std::span<const int64_t> rows, Tensor& out);
void silu_mul(Device& dev, const Tensor& gate_up, Tensor& out);
void add(Device& dev, const Tensor& a, const Tensor& b, Tensor& out);

// Hugging Face's default RoPE frequencies: 1 / theta^(2i / head_dim), computed in fp32.
std::vector<float> rope_inv_freq(int64_t head_dim, double theta);
// cos and sin [T, head_dim / 2], one position per row, computed on the device and scaled by the
// attention factor (YaRN's; 1 otherwise). inv_freq: head_dim / 2 frequencies for every row.
void rope_tables(Device& dev, std::span<const float> inv_freq, std::span<const int64_t> positions,
                 Tensor& cos, Tensor& sin, float attention_factor = 1.0f);
// The same with frequencies of its own for each row (T x half: dynamic RoPE scaling, whose
// frequencies follow each sequence's length).
void rope_tables_per_row(Device& dev, std::span<const float> inv_freq, int64_t half,
                         std::span<const int64_t> positions, Tensor& cos, Tensor& sin);

}  // namespace bringup::ops
