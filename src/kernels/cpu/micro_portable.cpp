// Portable matmul micro-kernels, written once with Highway and compiled for every SIMD target it
// knows; the best one for this CPU is picked at run time.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/micro_portable.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// foreach_target.h must come first.
#include "hwy/highway.h"

#include <cmath>

#include "core/dtype.h"
#include "kernels/cpu/microkernels.h"
#include "kernels/cpu/tile_dispatch.h"

// Loops over tile rows and groups have compile-time trip counts; "GCC unroll" makes sure they
// are unrolled so the accumulators stay in registers (GCC does not at -O2 by itself).

HWY_BEFORE_NAMESPACE();
namespace bringup::cpu::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using D = hn::CappedTag<float, 16>;
constexpr size_t kLanes = hn::MaxLanes(D());
constexpr int kVecs = static_cast<int>(16 / kLanes);  // vectors per group of 16 outputs
// Rows per pass, so the accumulators stay in registers on narrower targets.
constexpr int kRowsPerPass = kVecs == 1 ? 8 : (kVecs == 2 ? 4 : 2);

// Accumulators of a tile: loaded from acc, stored back.
template <int MR, int NG>
struct AccTile {
  hn::Vec<D> c[MR][NG][kVecs];
  explicit AccTile(const float* acc) {
    const D d;
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
      for (int g = 0; g < NG; ++g)
#pragma GCC unroll 16
        for (int v = 0; v < kVecs; ++v)
          c[m][g][v] = hn::LoadU(d, acc + m * kAccStride + g * 16 + v * kLanes);
  }
  void store(float* acc) const {
    const D d;
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
      for (int g = 0; g < NG; ++g)
#pragma GCC unroll 16
        for (int v = 0; v < kVecs; ++v)
          hn::StoreU(c[m][g][v], d, acc + m * kAccStride + g * 16 + v * kLanes);
  }
  // c += a[m][k] * w for every row.
  HWY_INLINE void madd(const float* a, int64_t lda, int64_t k, const hn::Vec<D> (&w)[NG][kVecs]) {
    const D d;
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      const auto x = hn::Set(d, a[m * lda + k]);
#pragma GCC unroll 16
      for (int g = 0; g < NG; ++g)
#pragma GCC unroll 16
        for (int v = 0; v < kVecs; ++v) c[m][g][v] = hn::MulAdd(x, w[g][v], c[m][g][v]);
    }
  }
};

template <int MR, int NG>
void F32TileT(const float* a, int64_t lda, const float* const* b, int64_t kn, float* acc) {
  const D d;
  AccTile<MR, NG> t(acc);
  for (int64_t k = 0; k < kn; ++k) {
    hn::Vec<D> w[NG][kVecs];
#pragma GCC unroll 16
    for (int g = 0; g < NG; ++g)
#pragma GCC unroll 16
      for (int v = 0; v < kVecs; ++v) w[g][v] = hn::LoadU(d, b[g] + k * 16 + v * kLanes);
    t.madd(a, lda, k, w);
  }
  t.store(acc);
}

// bf16 pairs: for each pair, the even input's weights then the odd input's, per lane.
template <int MR, int NG>
void Bf16TileT(const uint16_t* a, int64_t lda, const uint16_t* const* b, int64_t pairs,
               float* acc) {
  const D d;
  const hn::RebindToUnsigned<D> du;
  AccTile<MR, NG> t(acc);
  auto& c = t.c;
  const auto hi_mask = hn::Set(du, 0xFFFF0000u);
  for (int64_t p = 0; p < pairs; ++p) {
    hn::Vec<D> even[NG][kVecs], odd[NG][kVecs];
#pragma GCC unroll 16
    for (int g = 0; g < NG; ++g)
#pragma GCC unroll 16
      for (int v = 0; v < kVecs; ++v) {
        const auto w = hn::LoadU(du, reinterpret_cast<const uint32_t*>(b[g] + p * 32) + v * kLanes);
        even[g][v] = hn::BitCast(d, hn::ShiftLeft<16>(w));
        odd[g][v] = hn::BitCast(d, hn::And(w, hi_mask));
      }
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      const auto x0 = hn::Set(d, bf16_to_f32(a[m * lda + 2 * p]));
      const auto x1 = hn::Set(d, bf16_to_f32(a[m * lda + 2 * p + 1]));
#pragma GCC unroll 16
      for (int g = 0; g < NG; ++g)
#pragma GCC unroll 16
        for (int v = 0; v < kVecs; ++v) {
          c[m][g][v] = hn::MulAdd(x0, even[g][v], c[m][g][v]);
          c[m][g][v] = hn::MulAdd(x1, odd[g][v], c[m][g][v]);
        }
    }
  }
  t.store(acc);
}

template <int MR, int NG>
void BfpTileT(const uint16_t* a, int64_t lda, const int8_t* const* codes,
              const uint8_t* const* exps, int64_t kn, int exp_bias, float* acc) {
  const D d;
  const hn::RebindToSigned<D> di;
  const hn::Rebind<int8_t, D> d8;
  AccTile<MR, NG> t(acc);
  auto& c = t.c;
  for (int64_t k = 0; k < kn; ++k) {
    hn::Vec<D> w[NG][kVecs];
    float scale[NG];
#pragma GCC unroll 16
    for (int g = 0; g < NG; ++g) {
      scale[g] = std::ldexp(1.0f, static_cast<int>(exps[g][k]) - exp_bias);
#pragma GCC unroll 16
      for (int v = 0; v < kVecs; ++v) {
        w[g][v] =
            hn::ConvertTo(d, hn::PromoteTo(di, hn::LoadU(d8, codes[g] + k * 16 + v * kLanes)));
      }
    }
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
      for (int g = 0; g < NG; ++g) {
        const auto x = hn::Set(d, bf16_to_f32(a[m * lda + k]) * scale[g]);
#pragma GCC unroll 16
        for (int v = 0; v < kVecs; ++v) c[m][g][v] = hn::MulAdd(x, w[g][v], c[m][g][v]);
      }
  }
  t.store(acc);
}

// 16 lanes of fp16 (ggml's block scales) to fp32, exactly.
HWY_INLINE hn::Vec<D> LoadF16(const uint16_t* p) {
  const D d;
  const hn::Rebind<hwy::float16_t, D> dh;
  return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
}

// Unsigned bytes to fp32 lanes, exactly.
template <class V8>
HWY_INLINE hn::Vec<D> BytesToF32(V8 bytes) {
  const D d;
  const hn::RebindToSigned<D> di;
  return hn::ConvertTo(d, hn::PromoteTo(di, bytes));
}

// Inputs [k0, k1) of int8 codes sharing one scale per lane: w = scale * code (Q8_0: exact;
// Q6_K: rounded as ggml rounds (d * scale) * code), then every row's acc += a * w.
template <int MR, int NG>
HWY_INLINE void ScaledCodes(AccTile<MR, NG>& t, const float* a, int64_t lda,
                            const int8_t* const* codes, const hn::Vec<D> (&scale)[NG][kVecs],
                            int64_t k0, int64_t k1) {
  const D d;
  const hn::RebindToSigned<D> di;
  const hn::Rebind<int8_t, D> d8;
  for (int64_t k = k0; k < k1; ++k) {
    hn::Vec<D> w[NG][kVecs];
#pragma GCC unroll 16
    for (int g = 0; g < NG; ++g)
#pragma GCC unroll 16
      for (int v = 0; v < kVecs; ++v) {
        const auto q = hn::PromoteTo(di, hn::LoadU(d8, codes[g] + k * 16 + v * kLanes));
        w[g][v] = hn::Mul(scale[g][v], hn::ConvertTo(d, q));
      }
    t.madd(a, lda, k, w);
  }
}

template <int MR, int NG>
void Q8_0TileT(const float* a, int64_t lda, const int8_t* const* codes,
               const uint16_t* const* scales, int64_t kn, float* acc) {
  AccTile<MR, NG> t(acc);
  for (int64_t b = 0; b < kn / 32; ++b) {
    hn::Vec<D> scale[NG][kVecs];
#pragma GCC unroll 16
    for (int g = 0; g < NG; ++g)
#pragma GCC unroll 16
      for (int v = 0; v < kVecs; ++v) scale[g][v] = LoadF16(scales[g] + b * 16 + v * kLanes);
    ScaledCodes(t, a, lda, codes, scale, b * 32, b * 32 + 32);
  }
  t.store(acc);
}

template <int MR, int NG>
void Q4KTileT(const float* a, int64_t lda, const uint8_t* const* codes,
              const uint16_t* const* scales, const uint8_t* const* subs, int64_t kn, float* acc) {
  const hn::Rebind<uint8_t, D> du8;
  const auto low = hn::Set(du8, uint8_t{0x0F});
  AccTile<MR, NG> t(acc);
  for (int64_t s = 0; s < kn / 256; ++s) {
    hn::Vec<D> dd[NG][kVecs], dmin[NG][kVecs];
#pragma GCC unroll 16
    for (int g = 0; g < NG; ++g)
#pragma GCC unroll 16
      for (int v = 0; v < kVecs; ++v) {
        dd[g][v] = LoadF16(scales[g] + (2 * s) * 16 + v * kLanes);
        dmin[g][v] = LoadF16(scales[g] + (2 * s + 1) * 16 + v * kLanes);
      }
    for (int64_t j = s * 8; j < s * 8 + 8; ++j) {
      hn::Vec<D> d1[NG][kVecs], m1[NG][kVecs];  // exact: 11 x 6 bits
#pragma GCC unroll 16
      for (int g = 0; g < NG; ++g)
#pragma GCC unroll 16
        for (int v = 0; v < kVecs; ++v) {
          d1[g][v] =
              hn::Mul(dd[g][v], BytesToF32(hn::LoadU(du8, subs[g] + (2 * j) * 16 + v * kLanes)));
          m1[g][v] = hn::Mul(dmin[g][v],
                             BytesToF32(hn::LoadU(du8, subs[g] + (2 * j + 1) * 16 + v * kLanes)));
        }
      for (int64_t pair = j * 16; pair < j * 16 + 16; ++pair) {
        hn::Vec<D> w0[NG][kVecs], w1[NG][kVecs];
#pragma GCC unroll 16
        for (int g = 0; g < NG; ++g)
#pragma GCC unroll 16
          for (int v = 0; v < kVecs; ++v) {
            const auto bytes = hn::LoadU(du8, codes[g] + pair * 16 + v * kLanes);
            // d1 * code is exact, so this rounds once, as ggml's d1 * code - m1 does.
            w0[g][v] = hn::MulSub(d1[g][v], BytesToF32(hn::And(bytes, low)), m1[g][v]);
            w1[g][v] = hn::MulSub(d1[g][v], BytesToF32(hn::ShiftRight<4>(bytes)), m1[g][v]);
          }
        t.madd(a, lda, 2 * pair, w0);
        t.madd(a, lda, 2 * pair + 1, w1);
      }
    }
  }
  t.store(acc);
}

template <int MR, int NG>
void Q6KTileT(const float* a, int64_t lda, const int8_t* const* codes,
              const uint16_t* const* scales, const int8_t* const* subs, int64_t kn, float* acc) {
  const D d;
  const hn::RebindToSigned<D> di;
  const hn::Rebind<int8_t, D> d8;
  AccTile<MR, NG> t(acc);
  for (int64_t s = 0; s < kn / 256; ++s) {
    hn::Vec<D> dd[NG][kVecs];
#pragma GCC unroll 16
    for (int g = 0; g < NG; ++g)
#pragma GCC unroll 16
      for (int v = 0; v < kVecs; ++v) dd[g][v] = LoadF16(scales[g] + s * 16 + v * kLanes);
    for (int64_t j = s * 16; j < s * 16 + 16; ++j) {
      hn::Vec<D> scale[NG][kVecs];  // d * scale: exact (11 x 8 bits)
#pragma GCC unroll 16
      for (int g = 0; g < NG; ++g)
#pragma GCC unroll 16
        for (int v = 0; v < kVecs; ++v) {
          const auto sc = hn::PromoteTo(di, hn::LoadU(d8, subs[g] + j * 16 + v * kLanes));
          scale[g][v] = hn::Mul(dd[g][v], hn::ConvertTo(d, sc));
        }
      ScaledCodes(t, a, lda, codes, scale, j * 16, j * 16 + 16);
    }
  }
  t.store(acc);
}

void F32Tile(int rows, int groups, const float* a, int64_t lda, const float* const* b, int64_t kn,
             float* acc) {
  dispatch_tile<kRowsPerPass>(rows, groups, [&]<int R, int G>(int m0) {
    F32TileT<R, G>(a + m0 * lda, lda, b, kn, acc + m0 * kAccStride);
  });
}

void Bf16Tile(int rows, int groups, const uint16_t* a, int64_t lda, const uint16_t* const* b,
              int64_t pairs, float* acc) {
  dispatch_tile<kRowsPerPass>(rows, groups, [&]<int R, int G>(int m0) {
    Bf16TileT<R, G>(a + m0 * lda, lda, b, pairs, acc + m0 * kAccStride);
  });
}

bool BfpTile(int rows, int groups, const uint16_t* a, int64_t lda, const int8_t* const* codes,
             const uint8_t* const* exps, int64_t kn, int exp_bias, float* acc) {
  // Blocks too far from the bias: an activation times 2^(exp - bias) could leave the normal
  // numbers and round differently from the decoded weight's product (microkernels.h).
  for (int g = 0; g < groups; ++g) {
    for (int64_t k = 0; k < kn; ++k) {
      const int shift = static_cast<int>(exps[g][k]) - exp_bias;
      if (shift < kBfpMinShift || shift > kBfpMaxShift) return false;
    }
  }
  dispatch_tile<kRowsPerPass>(rows, groups, [&]<int R, int G>(int m0) {
    BfpTileT<R, G>(a + m0 * lda, lda, codes, exps, kn, exp_bias, acc + m0 * kAccStride);
  });
  return true;
}

void Q8_0Tile(int rows, int groups, const float* a, int64_t lda, const int8_t* const* codes,
              const uint16_t* const* scales, int64_t kn, float* acc) {
  dispatch_tile<kRowsPerPass>(rows, groups, [&]<int R, int G>(int m0) {
    Q8_0TileT<R, G>(a + m0 * lda, lda, codes, scales, kn, acc + m0 * kAccStride);
  });
}

void Q4KTile(int rows, int groups, const float* a, int64_t lda, const uint8_t* const* codes,
             const uint16_t* const* scales, const uint8_t* const* subs, int64_t kn, float* acc) {
  dispatch_tile<kRowsPerPass>(rows, groups, [&]<int R, int G>(int m0) {
    Q4KTileT<R, G>(a + m0 * lda, lda, codes, scales, subs, kn, acc + m0 * kAccStride);
  });
}

void Q6KTile(int rows, int groups, const float* a, int64_t lda, const int8_t* const* codes,
             const uint16_t* const* scales, const int8_t* const* subs, int64_t kn, float* acc) {
  dispatch_tile<kRowsPerPass>(rows, groups, [&]<int R, int G>(int m0) {
    Q6KTileT<R, G>(a + m0 * lda, lda, codes, scales, subs, kn, acc + m0 * kAccStride);
  });
}

void BfpToBf16(const int8_t* codes, const uint8_t* exps, int64_t kn, int exp_bias, uint16_t* out) {
  const int64_t padded = (kn + 1) / 2 * 2;
  for (int64_t i = 0; i < padded; ++i) {
    const float scale = i < kn ? std::ldexp(1.0f, static_cast<int>(exps[i]) - exp_bias) : 0.0f;
    for (int lane = 0; lane < 16; ++lane) {
      const float v = i < kn ? static_cast<float>(codes[i * 16 + lane]) * scale : 0.0f;
      out[(i / 2) * 32 + lane * 2 + (i % 2)] = f32_to_bf16(v);
    }
  }
}

}  // namespace bringup::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bringup::cpu {

HWY_EXPORT(F32Tile);
HWY_EXPORT(Bf16Tile);
HWY_EXPORT(BfpTile);
HWY_EXPORT(BfpToBf16);
HWY_EXPORT(Q8_0Tile);
HWY_EXPORT(Q4KTile);
HWY_EXPORT(Q6KTile);

namespace {
void DispatchF32(int rows, int groups, const float* a, int64_t lda, const float* const* b,
                 int64_t kn, float* acc) {
  HWY_DYNAMIC_DISPATCH(F32Tile)(rows, groups, a, lda, b, kn, acc);
}
// Ahead is a hint; Highway 1.0.3's Prefetch has no L2 hint, and the portable set ignores it.
void DispatchBf16(int rows, int groups, const uint16_t* a, int64_t lda, const uint16_t* const* b,
                  int64_t pairs, float* acc, const Ahead& /*ahead*/) {
  HWY_DYNAMIC_DISPATCH(Bf16Tile)(rows, groups, a, lda, b, pairs, acc);
}
bool DispatchBfp(int rows, int groups, const uint16_t* a, int64_t lda, const int8_t* const* codes,
                 const uint8_t* const* exps, int64_t kn, int exp_bias, float* acc) {
  return HWY_DYNAMIC_DISPATCH(BfpTile)(rows, groups, a, lda, codes, exps, kn, exp_bias, acc);
}
void DispatchBfpToBf16(const int8_t* codes, const uint8_t* exps, int64_t kn, int exp_bias,
                       uint16_t* out) {
  HWY_DYNAMIC_DISPATCH(BfpToBf16)(codes, exps, kn, exp_bias, out);
}
// The portable set decodes the block first, then multiplies.
bool DispatchBfpDecoding(int rows, int groups, const uint16_t* a, int64_t lda,
                         const int8_t* const* codes, const uint8_t* const* exps, int64_t kn,
                         int exp_bias, uint16_t* const* out, float* acc, const Ahead& ahead) {
  const uint16_t* b[kTileGroups] = {};
  for (int g = 0; g < groups; ++g) {
    DispatchBfpToBf16(codes[g], exps[g], kn, exp_bias, out[g]);
    b[g] = out[g];
  }
  DispatchBf16(rows, groups, a, lda, b, (kn + 1) / 2, acc, ahead);
  return true;
}
void DispatchQ8_0(int rows, int groups, const float* a, int64_t lda, const int8_t* const* codes,
                  const uint16_t* const* scales, int64_t kn, float* acc) {
  HWY_DYNAMIC_DISPATCH(Q8_0Tile)(rows, groups, a, lda, codes, scales, kn, acc);
}
void DispatchQ4K(int rows, int groups, const float* a, int64_t lda, const uint8_t* const* codes,
                 const uint16_t* const* scales, const uint8_t* const* subs, int64_t kn,
                 float* acc) {
  HWY_DYNAMIC_DISPATCH(Q4KTile)(rows, groups, a, lda, codes, scales, subs, kn, acc);
}
void DispatchQ6K(int rows, int groups, const float* a, int64_t lda, const int8_t* const* codes,
                 const uint16_t* const* scales, const int8_t* const* subs, int64_t kn, float* acc) {
  HWY_DYNAMIC_DISPATCH(Q6KTile)(rows, groups, a, lda, codes, scales, subs, kn, acc);
}
}  // namespace

const MicroKernels& portable_kernels() {
  static const MicroKernels k{"highway",    DispatchF32,       DispatchBf16,
                              DispatchBfp,  DispatchBfpToBf16, DispatchBfpDecoding,
                              DispatchQ8_0, DispatchQ4K,       DispatchQ6K};
  return k;
}

}  // namespace bringup::cpu
#endif  // HWY_ONCE
