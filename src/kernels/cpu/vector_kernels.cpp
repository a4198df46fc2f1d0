#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/vector_kernels.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// foreach_target.h must come first.
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

#include <cmath>
#include <limits>

#include "core/dtype.h"
#include "kernels/cpu/vector_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace bringup::cpu::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using D = hn::ScalableTag<float>;

HWY_INLINE float Dot(const float* a, const float* b, int64_t n) {
  const D d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  auto s0 = hn::Zero(d), s1 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
    s1 = hn::MulAdd(hn::LoadU(d, a + i + lanes), hn::LoadU(d, b + i + lanes), s1);
  }
  for (; i + lanes <= n; i += lanes) s0 = hn::MulAdd(hn::LoadU(d, a + i), hn::LoadU(d, b + i), s0);
  float s = hn::GetLane(hn::SumOfLanes(d, hn::Add(s0, s1)));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// y += a * x
HWY_INLINE void Axpy(float a, const float* x, float* y, int64_t n) {
  const D d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  const auto va = hn::Set(d, a);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::StoreU(hn::MulAdd(va, hn::LoadU(d, x + i), hn::LoadU(d, y + i)), d, y + i);
  }
  for (; i < n; ++i) y[i] += a * x[i];
}

// A K or V row as fp32: the cache itself when it is fp32, else converted into tmp.
HWY_INLINE const float* CacheRow(const KvView& kv, const void* base, int64_t head, int64_t pos,
                                 float* tmp) {
  const int64_t off = kv.offset(head, pos);
  if (kv.dtype == CacheDType::kF32) return static_cast<const float*>(base) + off;
  const uint16_t* src = static_cast<const uint16_t*>(base) + off;
  for (int64_t i = 0; i < kv.head_dim; ++i) tmp[i] = bf16_to_f32(src[i]);
  return tmp;
}

void AttendRange(int heads, const float* const* q, const KvView& kv, int64_t kv_head, int64_t begin,
                 int64_t end, float scale, float* scratch, float* out, float* max, float* sum) {
  const D d;
  const int64_t hd = kv.head_dim, len = end - begin;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  float* scores = scratch;
  float* row = scratch + heads * len;
  for (int64_t p = 0; p < len; ++p) {
    const float* k = CacheRow(kv, kv.k, kv_head, begin + p, row);
    for (int j = 0; j < heads; ++j) scores[j * len + p] = Dot(q[j], k, hd) * scale;
  }
  for (int j = 0; j < heads; ++j) {
    float* s = scores + j * len;
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t p = 0; p < len; ++p) m = s[p] > m ? s[p] : m;
    const auto vm = hn::Set(d, m);
    auto vsum = hn::Zero(d);
    int64_t p = 0;
    for (; p + lanes <= len; p += lanes) {
      const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, s + p), vm));
      hn::StoreU(e, d, s + p);
      vsum = hn::Add(vsum, e);
    }
    float total = hn::GetLane(hn::SumOfLanes(d, vsum));
    for (; p < len; ++p) {
      s[p] = std::exp(s[p] - m);
      total += s[p];
    }
    max[j] = m;
    sum[j] = total;
    for (int64_t i = 0; i < hd; ++i) out[j * hd + i] = 0.0f;
  }
  for (int64_t p = 0; p < len; ++p) {
    const float* v = CacheRow(kv, kv.v, kv_head, begin + p, row);
    for (int j = 0; j < heads; ++j) Axpy(scores[j * len + p], v, out + j * hd, hd);
  }
}

void RmsNormRow(const float* x, const float* w, int64_t n, float eps, float* out) {
  const float ms = Dot(x, x, n) / static_cast<float>(n);
  const float r = 1.0f / std::sqrt(ms + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = w[i] * (x[i] * r);
}

void SiluMulRow(const float* g, const float* u, int64_t n, float* out) {
  const D d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  const auto one = hn::Set(d, 1.0f);
  const auto limit = hn::Set(d, 88.0f);  // exp(-x) overflows past this; silu is -0 there anyway
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const auto x = hn::LoadU(d, g + i);
    const auto e = hn::Exp(d, hn::Min(hn::Neg(x), limit));
    hn::StoreU(hn::Mul(hn::Div(x, hn::Add(one, e)), hn::LoadU(d, u + i)), d, out + i);
  }
  for (; i < n; ++i) out[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void AddRow(const float* a, const float* b, int64_t n, float* out) {
  const D d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::StoreU(hn::Add(hn::LoadU(d, a + i), hn::LoadU(d, b + i)), d, out + i);
  }
  for (; i < n; ++i) out[i] = a[i] + b[i];
}

void RopeRow(float* x, const float* c, const float* s, int64_t half) {
  for (int64_t i = 0; i < half; ++i) {
    const float x1 = x[i], x2 = x[i + half];
    x[i] = x1 * c[i] - x2 * s[i];
    x[i + half] = x2 * c[i] + x1 * s[i];
  }
}

}  // namespace bringup::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bringup::cpu {

HWY_EXPORT(AttendRange);
HWY_EXPORT(RmsNormRow);
HWY_EXPORT(SiluMulRow);
HWY_EXPORT(AddRow);
HWY_EXPORT(RopeRow);

void attend_range(int heads, const float* const* q, const KvView& kv, int64_t kv_head,
                  int64_t begin, int64_t end, float scale, float* scratch, float* out, float* max,
                  float* sum) {
  HWY_DYNAMIC_DISPATCH(AttendRange)
  (heads, q, kv, kv_head, begin, end, scale, scratch, out, max, sum);
}
void rms_norm_row(const float* x, const float* weight, int64_t n, float eps, float* out) {
  HWY_DYNAMIC_DISPATCH(RmsNormRow)(x, weight, n, eps, out);
}
void silu_mul_row(const float* gate, const float* up, int64_t n, float* out) {
  HWY_DYNAMIC_DISPATCH(SiluMulRow)(gate, up, n, out);
}
void add_row(const float* a, const float* b, int64_t n, float* out) {
  HWY_DYNAMIC_DISPATCH(AddRow)(a, b, n, out);
}
void rope_row(float* x, const float* cos, const float* sin, int64_t half) {
  HWY_DYNAMIC_DISPATCH(RopeRow)(x, cos, sin, half);
}

}  // namespace bringup::cpu
#endif  // HWY_ONCE
