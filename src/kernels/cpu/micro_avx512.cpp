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
// pipes, so it keeps kSplit independent partial sums per output, added up at the end.
template <int MR, int NG>
constexpr int kSplit = MR* NG >= 8 ? 1 : 8 / (MR * NG);

// The accumulator tile into partial sum 0, the others zeroed; and back, partial sums added.
template <int S, int MR, int NG>
inline void load_partials(const float* acc, __m512 (&c)[S][MR][NG]) {
#pragma GCC unroll 16
  for (int s = 0; s < S; ++s)
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m)
#pragma GCC unroll 16
      for (int g = 0; g < NG; ++g)
        c[s][m][g] = s == 0 ? _mm512_loadu_ps(acc + m * kAccStride + g * 16) : _mm512_setzero_ps();
}

template <int S, int MR, int NG>
inline void store_partials(__m512 (&c)[S][MR][NG], float* acc) {
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
  constexpr int S = kSplit<MR, NG>;
  __m512 c[S][MR][NG];
  load_partials<S, MR, NG>(acc, c);
  auto step = [&](int64_t p, __m512(&cs)[MR][NG]) __attribute__((always_inline)) {
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
  };
  int64_t p = 0;
  for (; p + S <= pairs; p += S) {
#pragma GCC unroll 16
    for (int s = 0; s < S; ++s) step(p + s, c[s]);
  }
  for (; p < pairs; ++p) step(p, c[0]);
  store_partials<S, MR, NG>(c, acc);
}

// First every activation times its block's 2^(exp - bias) (vscalefps, exact) for the whole range,
// then one fp32 FMA per input, row and group. The scaled activations are written well before they
// are read back as broadcasts: a vector store read back at once as scalars stalls on
// store-to-load forwarding.
constexpr int64_t kBfpMaxRange = 512;  // inputs per call (matmul's kBlockK)
// How far ahead the codes are prefetched: the hardware prefetcher alone leaves this
// compute-heavy loop waiting on memory.
constexpr int64_t kPrefetchInputs = 128;

template <int MR, int NG>
void BfpTileT(const float* a, int64_t lda, const int8_t* const* codes, const uint8_t* const* exps,
              int64_t kn, int exp_bias, float* acc) {
  constexpr int S = kSplit<MR, NG>;
  alignas(64) float xs[NG][MR][kBfpMaxRange];
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
        _mm512_store_ps(&xs[g][m][k0], _mm512_scalef_ps(x, e));
      }
    }
  }
  __m512 c[S][MR][NG];
  load_partials<S, MR, NG>(acc, c);
  auto step = [&](int64_t k, __m512(&cs)[MR][NG]) __attribute__((always_inline)) {
#pragma GCC unroll 16
    for (int g = 0; g < NG; ++g) {
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes[g] + k * 16));
      const __m512 w = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q));
#pragma GCC unroll 16
      for (int m = 0; m < MR; ++m) {
        cs[m][g] = _mm512_fmadd_ps(w, _mm512_set1_ps(xs[g][m][k]), cs[m][g]);
      }
    }
  };
  int64_t k = 0;
  for (; k + S <= kn; k += S) {
    if (k % 4 == 0) {
#pragma GCC unroll 16
      for (int g = 0; g < NG; ++g) _mm_prefetch(codes[g] + (k + kPrefetchInputs) * 16, _MM_HINT_T0);
    }
#pragma GCC unroll 16
    for (int s = 0; s < S; ++s) step(k + s, c[s]);
  }
  for (; k < kn; ++k) step(k, c[0]);
  store_partials<S, MR, NG>(c, acc);
}

void Bf16Tile(int rows, int groups, const uint16_t* a, int64_t lda, const uint16_t* const* b,
              int64_t pairs, float* acc) {
  dispatch_tile<kTileRows>(rows, groups, [&]<int R, int G>(int m0) {
    Bf16TileT<R, G>(a + m0 * lda, lda, b, pairs, acc + m0 * kAccStride);
  });
}

// 4 rows x 2 groups at a time keeps the scaled activations and accumulators in L1 / registers.
void BfpTile(int rows, int groups, const float* a, int64_t lda, const int8_t* const* codes,
             const uint8_t* const* exps, int64_t kn, int exp_bias, float* acc) {
  dispatch_tile<4>(rows, groups, [&]<int R, int G>(int m0) {
    BfpTileT<R, G>(a + m0 * lda, lda, codes, exps, kn, exp_bias, acc + m0 * kAccStride);
  });
}

// Decodes two inputs' 16 weights at a time, then interleaves them into bf16 pairs.
void BfpToBf16(const int8_t* codes, const uint8_t* exps, int64_t kn, int exp_bias, uint16_t* out) {
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

// Sums 64-byte lines with four independent accumulators: the memory-read probe's inner loop.
uint64_t SumLines(const uint64_t* p, size_t words) {
  __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
  size_t i = 0;
  for (; i + 32 <= words; i += 32) {
    a = _mm512_add_epi64(a, _mm512_loadu_si512(p + i));
    b = _mm512_add_epi64(b, _mm512_loadu_si512(p + i + 8));
    c = _mm512_add_epi64(c, _mm512_loadu_si512(p + i + 16));
    d = _mm512_add_epi64(d, _mm512_loadu_si512(p + i + 24));
  }
  uint64_t s = static_cast<uint64_t>(
      _mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d))));
  for (; i < words; ++i) s += p[i];
  return s;
}

}  // namespace

// Constant-initialised: no code of this file runs before the CPUID check. f32 comes from the
// portable set.
extern const MicroKernels kAvx512Bf16Kernels = {"avx512-bf16", nullptr, Bf16Tile, BfpTile,
                                                BfpToBf16};
extern double (*const kAvx512Dpbf16Probe)(int64_t) = Dpbf16Loop;
extern uint64_t (*const kAvx512ReadProbe)(const uint64_t*, size_t) = SumLines;

}  // namespace bringup::cpu
