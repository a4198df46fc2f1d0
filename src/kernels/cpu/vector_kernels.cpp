#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/vector_kernels.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// foreach_target.h must come first.
#include "hwy/cache_control.h"
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

#include <algorithm>
#include <cmath>
#include <cstring>
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

// 2^(e - 133), the scale of a bfloat8_b block with shared exponent e (bfp_exponent_bias(7)),
// built from its bits; e < 7 gives a denormal.
HWY_INLINE float Bfp8Scale(uint32_t e) {
  const uint32_t bits = e >= 7 ? (e - 6) << 23 : 1u << (e + 16);
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// Head dims up to this take the blocked q.k of AttendRange (a block of K rows on the stack).
constexpr int64_t kMaxBlockHeadDim = 256;
alignas(64) constexpr float kZeros[kMaxBlockHeadDim] = {};  // the rows past a range's end

// Cache rows are read once, a few hundred bytes between much arithmetic, which the hardware
// prefetcher does not run ahead of (loads of the cache stalled half the time): K rows are fetched
// kAhead positions early, and each position's V row as its K row is used.
constexpr int64_t kAhead = 8;
// The fetches for one range of a head's positions, [begin, begin + len).
struct RangeFetch {
  const KvView& kv;
  int64_t head, begin, len, row_bytes;

  RangeFetch(const KvView& v, int64_t h, int64_t b, int64_t n)
      : kv(v), head(h), begin(b), len(n), row_bytes(v.row_bytes()) {
    for (int64_t p = 0; p < std::min(kAhead, len); ++p) fetch(kv.k, p);
  }
  // Before position p is read: K kAhead positions on, and p's V.
  void at(int64_t p) const {
    if (p + kAhead < len) fetch(kv.k, p + kAhead);
    fetch(kv.v, p);
  }
  void fetch(const void* base, int64_t p) const {
    const std::byte* row = kv.row(base, head, begin + p);
    for (int64_t b = 0; b < row_bytes; b += 64) hwy::Prefetch(row + b);
  }
};

// A K or V row as fp32: the cache itself when it is fp32, else expanded into tmp with the values
// load_cache_row gives (bf16 widened; bfloat8_b codes times their block's power of two, exact).
HWY_INLINE const float* CacheRow(const KvView& kv, const void* base, int64_t head, int64_t pos,
                                 float* tmp) {
  const std::byte* src = kv.row(base, head, pos);
  const int64_t hd = kv.head_dim;
  if (kv.dtype == CacheDType::kF32) return reinterpret_cast<const float*>(src);
  const D d;
  const hn::RebindToUnsigned<D> du;
  const hn::RebindToSigned<D> di;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  if (kv.dtype == CacheDType::kBf16) {
    const hn::Rebind<uint16_t, D> d16;
    const uint16_t* in = reinterpret_cast<const uint16_t*>(src);
    int64_t i = 0;
    for (; i + lanes <= hd; i += lanes) {
      const auto wide = hn::PromoteTo(du, hn::LoadU(d16, in + i));
      hn::StoreU(hn::BitCast(d, hn::ShiftLeft<16>(wide)), d, tmp + i);
    }
    for (; i < hd; ++i) tmp[i] = bf16_to_f32(in[i]);
    return tmp;
  }
  const hn::Rebind<uint8_t, D> d8;
  const uint8_t* exps = reinterpret_cast<const uint8_t*>(src);
  const uint8_t* codes = exps + (hd + kBfpBlock - 1) / kBfpBlock;
  const auto mag_mask = hn::Set(du, 0x7fu), sign_mask = hn::Set(du, 0x80u);
  int64_t i = 0;
  if (kBfpBlock % lanes == 0) {  // every vector within one block
    for (; i + kBfpBlock <= hd; i += kBfpBlock) {
      const auto scale = hn::Set(d, Bfp8Scale(exps[i / kBfpBlock]));
      for (int64_t j = i; j < i + kBfpBlock; j += lanes) {
        const auto c = hn::PromoteTo(du, hn::LoadU(d8, codes + j));
        const auto mag = hn::ConvertTo(d, hn::BitCast(di, hn::And(c, mag_mask)));
        const auto sign = hn::BitCast(d, hn::ShiftLeft<24>(hn::And(c, sign_mask)));
        hn::StoreU(hn::Mul(hn::Or(mag, sign), scale), d, tmp + j);
      }
    }
  }
  for (; i < hd; ++i) {
    tmp[i] = static_cast<float>(bfp_code_to_int(codes[i], kBfp8MantissaBits)) *
             Bfp8Scale(exps[i / kBfpBlock]);
  }
  return tmp;
}

// A K or V row as fp32 in dst (hd floats), whatever the cache holds.
HWY_INLINE void WidenRow(const KvView& kv, const void* base, int64_t head, int64_t pos,
                         float* dst) {
  const float* row = CacheRow(kv, base, head, pos, dst);
  if (row != dst) std::memcpy(dst, row, static_cast<size_t>(kv.head_dim) * sizeof(float));
}

// out[h] = sum_p e[h * len + p] * v[p] for heads h < H, v the rows of vbuf ([len][hd]): two
// vectors of head_dim per head held in registers over all positions, each lane summed in position
// order (the same sums whatever H is).
template <int H>
HWY_INLINE void WeightedSum(const float* e, int64_t len, const float* vbuf, int64_t hd,
                            float* out) {
  static_assert(H >= 1 && H <= 4);
  const D d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + 2 * lanes <= hd; i += 2 * lanes) {
    auto a0 = hn::Zero(d), a1 = a0, b0 = a0, b1 = a0, c0 = a0, c1 = a0, f0 = a0, f1 = a0;
    for (int64_t p = 0; p < len; ++p) {
      const float* v = vbuf + p * hd + i;
      const auto v0 = hn::LoadU(d, v), v1 = hn::LoadU(d, v + lanes);
      const auto wa = hn::Set(d, e[p]);
      a0 = hn::MulAdd(wa, v0, a0);
      a1 = hn::MulAdd(wa, v1, a1);
      if constexpr (H > 1) {
        const auto wb = hn::Set(d, e[len + p]);
        b0 = hn::MulAdd(wb, v0, b0);
        b1 = hn::MulAdd(wb, v1, b1);
      }
      if constexpr (H > 2) {
        const auto wc = hn::Set(d, e[2 * len + p]);
        c0 = hn::MulAdd(wc, v0, c0);
        c1 = hn::MulAdd(wc, v1, c1);
      }
      if constexpr (H > 3) {
        const auto wf = hn::Set(d, e[3 * len + p]);
        f0 = hn::MulAdd(wf, v0, f0);
        f1 = hn::MulAdd(wf, v1, f1);
      }
    }
    hn::StoreU(a0, d, out + i);
    hn::StoreU(a1, d, out + i + lanes);
    if constexpr (H > 1) {
      hn::StoreU(b0, d, out + hd + i);
      hn::StoreU(b1, d, out + hd + i + lanes);
    }
    if constexpr (H > 2) {
      hn::StoreU(c0, d, out + 2 * hd + i);
      hn::StoreU(c1, d, out + 2 * hd + i + lanes);
    }
    if constexpr (H > 3) {
      hn::StoreU(f0, d, out + 3 * hd + i);
      hn::StoreU(f1, d, out + 3 * hd + i + lanes);
    }
  }
  for (int h = 0; h < H; ++h) {
    const float* w = e + h * len;
    float* o = out + h * hd;
    for (int64_t k = i; k + lanes <= hd; k += lanes) {
      auto a = hn::Zero(d);
      for (int64_t p = 0; p < len; ++p) {
        a = hn::MulAdd(hn::Set(d, w[p]), hn::LoadU(d, vbuf + p * hd + k), a);
      }
      hn::StoreU(a, d, o + k);
    }
    for (int64_t k = i + (hd - i) / lanes * lanes; k < hd; ++k) {
      float a = 0.0f;
      for (int64_t p = 0; p < len; ++p) a += w[p] * vbuf[p * hd + k];
      o[k] = a;
    }
  }
}

// scores[j * len + p0 + i] = (q[j] . k_i) * scale for the n <= N positions of k (fp32 rows; rows
// n..N-1 are zeros), every head j. Each position's products go into a vector of its own (one
// multiply-add per N dims, in order), and the N vectors are summed into one vector of N scores by
// log2(N) rounds of adjacent-lane sums (ConcatEven + ConcatOdd): no horizontal sum per score, and
// the same tree for every position, wherever it falls in its block.
HWY_INLINE void BlockScores(int heads, const float* const* q, const float* const* k, int64_t hd,
                            float scale, int64_t len, int64_t p0, int64_t n, float* scores) {
  const D d;
  constexpr size_t N = hn::MaxLanes(D());
  for (int j = 0; j < heads; ++j) {
    hn::Vec<D> acc[N];
#pragma GCC unroll 16
    for (size_t i = 0; i < N; ++i) acc[i] = hn::Zero(d);
    for (int64_t c = 0; c < hd; c += static_cast<int64_t>(N)) {
      const auto qc = hn::LoadU(d, q[j] + c);
#pragma GCC unroll 16
      for (size_t i = 0; i < N; ++i) acc[i] = hn::MulAdd(qc, hn::LoadU(d, k[i] + c), acc[i]);
    }
#if HWY_TARGET != HWY_SCALAR  // one lane: nothing to sum
    {
#pragma GCC unroll 16
      for (size_t w = N; w > 1; w /= 2) {
#pragma GCC unroll 16
        for (size_t i = 0; i < w / 2; ++i) {
          acc[i] = hn::Add(hn::ConcatEven(d, acc[2 * i + 1], acc[2 * i]),
                           hn::ConcatOdd(d, acc[2 * i + 1], acc[2 * i]));
        }
      }
    }
#endif
    const auto out = hn::Mul(acc[0], hn::Set(d, scale));
    if (n == static_cast<int64_t>(N)) {
      hn::StoreU(out, d, scores + j * len + p0);
    } else {
      alignas(64) float tmp[N];
      hn::Store(out, d, tmp);
      std::memcpy(scores + j * len + p0, tmp, static_cast<size_t>(n) * sizeof(float));
    }
  }
}

// scores[j * len + p] = (q[j] . k_p) * scale, k_row(p, tmp) giving position p's K row as fp32
// (in tmp, hd floats, or elsewhere); tmp is a row of scratch for head dims BlockScores does not
// take.
template <class KRow>
HWY_INLINE void Scores(int heads, const float* const* q, int64_t hd, int64_t len, float scale,
                       float* tmp, float* scores, KRow&& k_row) {
  constexpr int64_t N = static_cast<int64_t>(hn::MaxLanes(D()));
  if (hd % N == 0 && hd <= kMaxBlockHeadDim) {  // N positions at a time
    alignas(64) float kbuf[N * kMaxBlockHeadDim];
    const float* k[N];
    for (int64_t p0 = 0; p0 < len; p0 += N) {
      const int64_t n = std::min(N, len - p0);
      for (int64_t i = 0; i < n; ++i) k[i] = k_row(p0 + i, kbuf + i * hd);
      for (int64_t i = n; i < N; ++i) k[i] = kZeros;
      BlockScores(heads, q, k, hd, scale, len, p0, n, scores);
    }
  } else {
    for (int64_t p = 0; p < len; ++p) {
      const float* k = k_row(p, tmp);
      for (int j = 0; j < heads; ++j) scores[j * len + p] = Dot(q[j], k, hd) * scale;
    }
  }
}

// The softmax numerators of each head's scores ([heads][len], in place), their max and sum.
HWY_INLINE void Softmax(int heads, float* scores, int64_t len, float* max, float* sum) {
  const D d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  for (int j = 0; j < heads; ++j) {
    float* s = scores + j * len;
    auto vmax = hn::Set(d, -std::numeric_limits<float>::infinity());
    int64_t p = 0;
    for (; p + lanes <= len; p += lanes) vmax = hn::Max(vmax, hn::LoadU(d, s + p));
    float m = hn::GetLane(hn::MaxOfLanes(d, vmax));
    for (; p < len; ++p) m = s[p] > m ? s[p] : m;
    const auto vm = hn::Set(d, m);
    auto vsum = hn::Zero(d);
    for (p = 0; p + lanes <= len; p += lanes) {
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
  }
}

// out[j] = sum_p e[j][p] * v_p over vbuf's [len][hd] fp32 rows, in position order, for up to four
// heads at once: each strip of V is read from vbuf once per four heads, not once per head.
HWY_INLINE void WeightedSums(int heads, const float* scores, int64_t len, const float* vbuf,
                             int64_t hd, float* out) {
  int j = 0;
  for (; j + 4 <= heads; j += 4) WeightedSum<4>(scores + j * len, len, vbuf, hd, out + j * hd);
  if (heads - j == 3) WeightedSum<3>(scores + j * len, len, vbuf, hd, out + j * hd);
  if (heads - j == 2) WeightedSum<2>(scores + j * len, len, vbuf, hd, out + j * hd);
  if (heads - j == 1) WeightedSum<1>(scores + j * len, len, vbuf, hd, out + j * hd);
}

void AttendRange(int heads, const float* const* q, const KvView& kv, int64_t kv_head, int64_t begin,
                 int64_t end, float scale, float* scratch, float* out, float* max, float* sum) {
  const int64_t hd = kv.head_dim, len = end - begin;
  float* scores = scratch;
  float* vbuf = scratch + heads * len;  // the range's V rows as fp32, [len][hd]
  float* row = vbuf;                    // (a K row as fp32 until then)
  const RangeFetch ahead(kv, kv_head, begin, len);
  // Position p's K row as fp32 (in tmp unless the cache is fp32), after fetching ahead.
  const auto k_row = [&](int64_t p, float* tmp) HWY_ATTR __attribute__((always_inline)) {
    ahead.at(p);
    return CacheRow(kv, kv.k, kv_head, begin + p, tmp);
  };
  Scores(heads, q, hd, len, scale, row, scores, k_row);
  Softmax(heads, scores, len, max, sum);
  for (int64_t p = 0; p < len; ++p) WidenRow(kv, kv.v, kv_head, begin + p, vbuf + p * hd);
  WeightedSums(heads, scores, len, vbuf, hd, out);
}

// A range's K and V rows as fp32, fetched ahead as AttendRange fetches them.
void ExpandRange(const KvView& kv, int64_t kv_head, int64_t begin, int64_t end, float* kbuf,
                 float* vbuf) {
  const int64_t hd = kv.head_dim, len = end - begin;
  const RangeFetch ahead(kv, kv_head, begin, len);
  for (int64_t p = 0; p < len; ++p) {
    ahead.at(p);
    WidenRow(kv, kv.k, kv_head, begin + p, kbuf + p * hd);
    WidenRow(kv, kv.v, kv_head, begin + p, vbuf + p * hd);
  }
}

// AttendRange over rows ExpandRange gave: the same products, sums and order.
void AttendExpanded(int heads, const float* const* q, const float* kbuf, const float* vbuf,
                    int64_t hd, int64_t len, float scale, float* scores, float* out, float* max,
                    float* sum) {
  const auto k_row = [&](int64_t p, float*) HWY_ATTR __attribute__((always_inline)) {
    return kbuf + p * hd;
  };
  Scores(heads, q, hd, len, scale, nullptr, scores, k_row);
  Softmax(heads, scores, len, max, sum);
  WeightedSums(heads, scores, len, vbuf, hd, out);
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
HWY_EXPORT(ExpandRange);
HWY_EXPORT(AttendExpanded);
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
void expand_range(const KvView& kv, int64_t kv_head, int64_t begin, int64_t end, float* k,
                  float* v) {
  HWY_DYNAMIC_DISPATCH(ExpandRange)(kv, kv_head, begin, end, k, v);
}
void attend_expanded(int heads, const float* const* q, const float* k, const float* v,
                     int64_t head_dim, int64_t len, float scale, float* scores, float* out,
                     float* max, float* sum) {
  HWY_DYNAMIC_DISPATCH(AttendExpanded)(heads, q, k, v, head_dim, len, scale, scores, out, max, sum);
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
