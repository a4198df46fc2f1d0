// Row-wise fp32 kernels (norms, activations, rotary embedding) and the attention inner loop,
// written with Highway and dispatched to the best SIMD target at run time.
#pragma once

#include <cstdint>

#include "core/kv_view.h"

namespace bringup::cpu {

// out = weight * (x * 1/sqrt(mean(x^2) + eps)), in fp32 like Hugging Face's Qwen2RMSNorm.
void rms_norm_row(const float* x, const float* weight, int64_t n, float eps, float* out);
// out = silu(gate) * up
void silu_mul_row(const float* gate, const float* up, int64_t n, float* out);
void add_row(const float* a, const float* b, int64_t n, float* out);
// Hugging Face rotate_half convention on one head vector of 2*half values.
void rope_row(float* x, const float* cos, const float* sin, int64_t half);

// Scores of `heads` query vectors (all sharing KV head `kv_head`) against positions
// [begin, end), softmax numerators and the weighted sum of V:
//   max[j] = max_p s[j][p], sum[j] = sum_p e^(s[j][p] - max[j]),
//   out[j] = sum_p e^(s[j][p] - max[j]) * v_p            (not yet divided by sum[j])
// with s = (q . k) * scale in fp32. scratch holds (heads + head_dim) * (end - begin) floats.
void attend_range(int heads, const float* const* q, const KvView& kv, int64_t kv_head,
                  int64_t begin, int64_t end, float scale, float* scratch, float* out, float* max,
                  float* sum);
// The same for several query rows of one sequence at once: expand_range widens the K and V rows of
// [begin, end) to fp32 once (k and v: [end - begin][head_dim] each), then attend_expanded runs
// each row over the first len of them, with attend_range's arithmetic (the same bits) and
// `scores` for heads * len floats.
void expand_range(const KvView& kv, int64_t kv_head, int64_t begin, int64_t end, float* k,
                  float* v);
void attend_expanded(int heads, const float* const* q, const float* k, const float* v,
                     int64_t head_dim, int64_t len, float scale, float* scores, float* out,
                     float* max, float* sum);

}  // namespace bringup::cpu
