// AVX512-BF16 matmul micro-kernels (Zen 4/5, Sapphire Rapids and later): vdpbf16ps multiplies
// bf16 pairs into fp32 accumulators at twice the rate of fp32 FMA, and vscalefps applies a block's
// shared exponent exactly.
//
// This file alone is compiled with -mavx512* (CMakeLists.txt); microkernels.cpp calls into it only
// after a CPUID check. So that no AVX-512 code leaks into functions other files share, it
// instantiates no templates and inline functions of the standard library: only intrinsics, and
// templates of its own in an anonymous namespace.
// GCC 12's AVX-512 headers self-initialise "undefined" vectors, which -W(maybe-)uninitialized
// misreports at every inlined call site.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/microkernels.h"
#include "kernels/cpu/tile_dispatch.h"

// Loops over tile rows and groups have compile-time trip counts; "GCC unroll" makes sure they
// are unrolled so the accumulators stay in registers (GCC does not at -O2 by itself).

namespace bringup::cpu {

namespace {

// A decode tile (one or two rows) has too few accumulators to hide the latency of the multiply
// pipes, so every output keeps kSplit partial sums (pair p goes to partial p % kSplit, a last
// incomplete round to partial 0), added up in order at the end. The split depends on the groups
// alone, never on the rows in the tile: a row's result must not depend on what else is in the
// batch.
template <int NG>
constexpr int kSplit = 4 / NG;
// Rows per register tile. Any height gives the same bits; four rows keep every partial sum in
// registers (kSplit x 4 rows x NG = 16 accumulators). Measured with bench/matmul_bench against
// splits of 8 (tiles of 2 rows, or of 8 with one pass per partial) and of 2 / NG with tiles of 8:
// as fast for one row and fastest or level for 4 to 32.
constexpr int kTileHeight = 4;

// Runs step(p, c) for every pair p in [0, pairs) into the partial sums above, starting from acc
// and leaving the total in acc. Both kernels accumulate through this, so that they agree.
template <int MR, int NG, class Step>
inline void accumulate_pairs(float* acc, int64_t pairs, Step&& step) {
  constexpr int S = kSplit<NG>;
  static_assert(S * MR * NG <= 16, "the partial sums must stay in registers");
  const int64_t full = pairs / S * S;
  __m512 c[S][MR][NG];
#pragma GCC unroll 16
  for (int s = 0; s < S; ++s)
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
      for (int g = 0; g < NG; ++g)
        c[s][m][g] = s == 0 ? _mm512_loadu_ps(acc + m * kAccStride + g * 16) : _mm512_setzero_ps();
  for (int64_t p = 0; p < full; p += S) {
#pragma GCC unroll 16
    for (int s = 0; s < S; ++s) step(p + s, c[s]);
  }
  for (int64_t p = full; p < pairs; ++p) step(p, c[0]);
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
    for (int g = 0; g < NG; ++g) {
#pragma GCC unroll 16
      for (int s = 1; s < S; ++s) c[0][m][g] = _mm512_add_ps(c[0][m][g], c[s][m][g]);
      _mm512_storeu_ps(acc + m * kAccStride + g * 16, c[0][m][g]);
    }
}

template <int MR, int NG>
void Bf16TileT(const uint16_t* a, int64_t lda, const uint16_t* const* b, int64_t pairs,
               float* acc) {
  accumulate_pairs<MR, NG>(
      acc, pairs, [&](int64_t p, __m512(&cs)[MR][NG]) __attribute__((always_inline)) {
        __m512bh w[NG];
#pragma GCC unroll 16
        for (int g = 0; g < NG; ++g) w[g] = (__m512bh)_mm512_loadu_si512(b[g] + p * 32);
#pragma GCC unroll 16
        for (int m = 0; m < MR; ++m) {
          int32_t pair;
          std::memcpy(&pair, a + m * lda + 2 * p, 4);
          const __m512bh x = (__m512bh)_mm512_set1_epi32(pair);
#pragma GCC unroll 16
          for (int g = 0; g < NG; ++g) cs[m][g] = _mm512_dpbf16_ps(cs[m][g], x, w[g]);
        }
      });
}

// Block-float weights used directly, for few rows: every activation times its block's
// 2^(exp - bias) first (vscalefps, exact), then per input pair two fp32 FMAs, the odd input's
// then the even one's, with denormals flushed (MXCSR FTZ and DAZ): exactly what vdpbf16ps does
// with the same pair decoded to bf16 (its products are exact, each added with one rounding, odd
// first, "DAZ in, FTZ out"). So a row gets the same bits on this path as through Bf16TileT. The
// scaled activations are written well before they are read back as broadcasts: a vector store
// read back at once as scalars stalls on store-to-load forwarding.
constexpr int64_t kBfpMaxRange = 512;  // inputs per call (matmul's kBlockK)
// How far ahead the codes are prefetched: the hardware prefetcher alone leaves this
// compute-heavy loop waiting on memory.
constexpr int64_t kPrefetchInputs = 128;
constexpr int64_t kDecodePrefetchInputs = 128;  // 2 KiB of codes ahead

template <int MR, int NG>
void BfpTileT(const float* a, int64_t lda, const int8_t* const* codes, const uint8_t* const* exps,
              int64_t kn, int exp_bias, float* acc) {
  alignas(64) float xs[NG][MR][kBfpMaxRange + 16];
  const __m512 bias = _mm512_set1_ps(static_cast<float>(exp_bias));
  for (int64_t k0 = 0; k0 < kn; k0 += 16) {
    const int kk = kn - k0 < 16 ? static_cast<int>(kn - k0) : 16;
    const __mmask16 mask = static_cast<__mmask16>((1u << kk) - 1);
#pragma GCC unroll 16
    for (int g = 0; g < NG; ++g) {
      const __m128i e8 = _mm_maskz_loadu_epi8(mask, exps[g] + k0);
      const __m512 e = _mm512_sub_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(e8)), bias);
#pragma GCC unroll 16
      for (int m = 0; m < MR; ++m) {
        const __m512 x = _mm512_maskz_loadu_ps(mask, a + m * lda + k0);
        _mm512_store_ps(&xs[g][m][k0], _mm512_maskz_scalef_ps(mask, x, e));
      }
    }
  }
  const int64_t pairs = (kn + 1) / 2;
  auto weights = [&](int g, int64_t k) __attribute__((always_inline)) {
    if (k >= kn) return _mm512_setzero_ps();  // the zero that pads an odd last input
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes[g] + k * 16));
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q));
  };
  const unsigned csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040);  // flush-to-zero and denormals-are-zero, as vdpbf16ps
  accumulate_pairs<MR, NG>(
      acc, pairs, [&](int64_t p, __m512(&cs)[MR][NG]) __attribute__((always_inline)) {
        if (p % 2 == 0) {
#pragma GCC unroll 16
          for (int g = 0; g < NG; ++g) {
            _mm_prefetch(reinterpret_cast<const char*>(codes[g] + (2 * p + kPrefetchInputs) * 16),
                         _MM_HINT_T0);
          }
        }
#pragma GCC unroll 16
        for (int g = 0; g < NG; ++g) {
          const __m512 odd = weights(g, 2 * p + 1), even = weights(g, 2 * p);
#pragma GCC unroll 16
          for (int m = 0; m < MR; ++m) {
            cs[m][g] = _mm512_fmadd_ps(odd, _mm512_set1_ps(xs[g][m][2 * p + 1]), cs[m][g]);
            cs[m][g] = _mm512_fmadd_ps(even, _mm512_set1_ps(xs[g][m][2 * p]), cs[m][g]);
          }
        }
      });
  _mm_setcsr(csr);
}

void Bf16Tile(int rows, int groups, const uint16_t* a, int64_t lda, const uint16_t* const* b,
              int64_t pairs, float* acc) {
  dispatch_tile<kTileHeight>(rows, groups, [&]<int R, int G>(int m0) {
    Bf16TileT<R, G>(a + m0 * lda, lda, b, pairs, acc + m0 * kAccStride);
  });
}

void BfpTile(int rows, int groups, const float* a, int64_t lda, const int8_t* const* codes,
             const uint8_t* const* exps, int64_t kn, int exp_bias, float* acc) {
  dispatch_tile<kTileHeight>(rows, groups, [&]<int R, int G>(int m0) {
    BfpTileT<R, G>(a + m0 * lda, lda, codes, exps, kn, exp_bias, acc + m0 * kAccStride);
  });
}

// Decodes two inputs' 16 weights at a time into bf16 pairs. A code has at most 7 significant
// bits, so code x 2^e is exact in bf16 and is the high half of the fp32 code with e added to its
// exponent field; the pair (even, odd) per lane is then one shift and one bit select. Exponents
// that could leave the normal range take the general path (vscalefps, rounding to bf16).
void BfpToBf16(const int8_t* codes, const uint8_t* exps, int64_t kn, int exp_bias, uint16_t* out) {
  __m512i vlo = _mm512_set1_epi8(-1), vhi = _mm512_setzero_si512();
  for (int64_t i = 0; i < kn; i += 64) {
    const __mmask64 m = kn - i >= 64 ? ~__mmask64{0} : (__mmask64{1} << (kn - i)) - 1;
    vlo = _mm512_mask_min_epu8(vlo, m, vlo, _mm512_maskz_loadu_epi8(m, exps + i));
    vhi = _mm512_max_epu8(vhi, _mm512_maskz_loadu_epi8(m, exps + i));
  }
  // Fold the four 128-bit lanes onto the first, then the 16 bytes left.
  auto fold = [](__m512i v, auto op) __attribute__((always_inline)) {
    v = op(v, _mm512_shuffle_i64x2(v, v, 0x4E));
    return op(v, _mm512_shuffle_i64x2(v, v, 0xB1));
  };
  const int lo = _mm512_reduce_min_epu32(_mm512_cvtepu8_epi32(_mm512_castsi512_si128(
      fold(vlo, [](__m512i x, __m512i y) { return _mm512_min_epu8(x, y); }))));
  const int hi = _mm512_reduce_max_epu32(_mm512_cvtepu8_epi32(_mm512_castsi512_si128(
      fold(vhi, [](__m512i x, __m512i y) { return _mm512_max_epu8(x, y); }))));
  if (lo - exp_bias < -126 || hi - exp_bias > 121) {
    alignas(64) static const uint16_t kInterleave[32] = {0,  16, 1,  17, 2,  18, 3,  19, 4,  20, 5,
                                                         21, 6,  22, 7,  23, 8,  24, 9,  25, 10, 26,
                                                         11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    const __m512i idx = _mm512_load_si512(kInterleave);
    auto decode = [&](int64_t i) {
      if (i >= kn) return _mm512_setzero_ps();
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + i * 16));
      const __m512 w = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q));
      return _mm512_scalef_ps(w, _mm512_set1_ps(static_cast<float>(exps[i] - exp_bias)));
    };
    for (int64_t i = 0; i < kn; i += 2) {
      const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(decode(i + 1), decode(i));
      _mm512_storeu_si512(out + i * 16, _mm512_permutexvar_epi16(idx, both));
    }
    return;
  }
  // The fp32 bits of code x 2^(exp - bias); zero codes stay zero.
  auto bits = [&](int64_t i) __attribute__((always_inline)) {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + i * 16));
    const __m512i c = _mm512_cvtepi8_epi32(q);
    const __m512i f = _mm512_castps_si512(_mm512_cvtepi32_ps(c));
    return _mm512_mask_add_epi32(f, _mm512_test_epi32_mask(c, c), f,
                                 _mm512_set1_epi32((exps[i] - exp_bias) * (1 << 23)));
  };
  const __m512i high = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  int64_t i = 0;
  for (; i + 1 < kn; i += 2) {
    // The codes come from memory once per step: fetch ahead, or the decode waits on every line.
    _mm_prefetch(reinterpret_cast<const char*>(codes + (i + kDecodePrefetchInputs) * 16),
                 _MM_HINT_T0);
    const __m512i even = bits(i), odd = bits(i + 1);
    // (odd & 0xFFFF0000) | (even >> 16): the bit select high ? odd : even >> 16 is 0xCA.
    const __m512i pair = _mm512_ternarylogic_epi32(high, odd, _mm512_srli_epi32(even, 16), 0xCA);
    _mm512_storeu_si512(out + i * 16, pair);
  }
  if (i < kn) _mm512_storeu_si512(out + i * 16, _mm512_srli_epi32(bits(i), 16));
}

// 16 independent accumulators hide the latency; 16 x 64 flops per iteration.
double Dpbf16Loop(int64_t iterations) {
  __m512 acc[16];
#pragma GCC unroll 16
  for (int j = 0; j < 16; ++j) acc[j] = _mm512_setzero_ps();
  const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f803f80);  // (1.0, 1.0)
  const __m512bh y = (__m512bh)_mm512_set1_epi32(0x00010001);  // tiny, so sums stay finite
  for (int64_t i = 0; i < iterations; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) acc[j] = _mm512_dpbf16_ps(acc[j], x, y);
  }
  __m512 s = acc[0];
#pragma GCC unroll 16
  for (int j = 1; j < 16; ++j) s = _mm512_add_ps(s, acc[j]);
  return static_cast<double>(_mm512_reduce_add_ps(s));
}

// The memory-read probe's inner loops: 64-byte lines summed into four independent accumulators,
// with plain loads, with software prefetch `kAhead` bytes ahead (as the GEMVs prefetch their
// weight rows), or with non-temporal loads and prefetchnta (they bypass the caches where the
// memory type allows it). Which is fastest differs between machines and sittings.
template <int kKind, size_t kAhead>  // kind: 0 plain, 1 prefetch, 2 non-temporal
uint64_t SumLines(const uint64_t* p, size_t words) {
  __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
  auto load = [&](size_t at) {
    if constexpr (kKind == 2) {
      return _mm512_stream_load_si512(const_cast<uint64_t*>(p + at));
    } else {
      return _mm512_loadu_si512(p + at);
    }
  };
  size_t i = 0;
  for (; i + 32 <= words; i += 32) {
    if constexpr (kKind == 1) {
      for (size_t line = 0; line < 256; line += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(p + i) + kAhead + line, _MM_HINT_T0);
      }
    } else if constexpr (kKind == 2) {
      for (size_t line = 0; line < 256; line += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(p + i) + kAhead + line, _MM_HINT_NTA);
      }
    }
    a = _mm512_add_epi64(a, load(i));
    b = _mm512_add_epi64(b, load(i + 8));
    c = _mm512_add_epi64(c, load(i + 16));
    d = _mm512_add_epi64(d, load(i + 24));
  }
  uint64_t s = static_cast<uint64_t>(
      _mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d))));
  for (; i < words; ++i) s += p[i];
  return s;
}

}  // namespace

// Constant-initialised: no code of this file runs before the CPUID check. f32 and the ggml
// block types come from the portable set (microkernels.cpp).
extern const MicroKernels kAvx512Bf16Kernels = {"avx512-bf16", nullptr, Bf16Tile, BfpTile,
                                                BfpToBf16,     nullptr, nullptr,  nullptr};
extern double (*const kAvx512Dpbf16Probe)(int64_t) = Dpbf16Loop;
// Indexed by ReadMethod (probes.h); the buffer is 64-byte aligned, as stream loads need.
extern uint64_t (*const kAvx512ReadProbes[4])(const uint64_t*, size_t) = {
    SumLines<0, 0>, SumLines<1, 1024>, SumLines<1, 4096>, SumLines<2, 4096>};

}  // namespace bringup::cpu
