// AVX512-BF16 matmul micro-kernels (Zen 4/5, Sapphire Rapids and later): vdpbf16ps multiplies
// bf16 pairs into fp32 accumulators at twice the rate of fp32 FMA, vscalefps applies a block's
// shared exponent exactly, and VBMI's byte permutes turn block-float codes into bf16.
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

#include "kernels/cpu/bfp_decode_avx512.h"
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

// cs[m][g] += row m's input pair p times w[g] (the pair's weights), for every row and group.
template <int MR, int NG, class W>
__attribute__((always_inline)) inline void multiply_pair(const uint16_t* a, int64_t lda, int64_t p,
                                                         const W (&w)[NG], __m512 (&cs)[MR][NG]) {
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m) {
    int32_t pair;
    std::memcpy(&pair, a + m * lda + 2 * p, 4);
    const __m512bh x = (__m512bh)_mm512_set1_epi32(pair);
#pragma GCC unroll 16
    for (int g = 0; g < NG; ++g) cs[m][g] = _mm512_dpbf16_ps(cs[m][g], x, (__m512bh)w[g]);
  }
}

// Line p of the range [at, at + bytes) of every group towards the cache (Ahead, microkernels.h).
template <int NG>
__attribute__((always_inline)) inline void prefetch_line(const char* const* at, int64_t bytes,
                                                         int64_t p) {
  if (p * 64 < bytes) {
#pragma GCC unroll 16
    for (int g = 0; g < NG; ++g) _mm_prefetch(at[g] + p * 64, _MM_HINT_T1);
  }
}

// How far ahead (bytes) a tile that streams its weights from memory (a block's first pass)
// prefetches them. The hardware prefetcher alone kept one row of gate_up at about 30 GB/s, and
// four rows' extra instructions per line shrank the out-of-order window's misses further;
// 2048 bytes ahead, 1-row gate_up went from 7.0-9.3 to 5.6-6.3 ms (docs/kernels.md), and 4096
// or 8192 were no better.
constexpr int64_t kStreamAhead = 2048;
template <int MR, int NG>
void Bf16TileT(const uint16_t* a, int64_t lda, const uint16_t* const* b, int64_t pairs, float* acc,
               const char* const* ahead = nullptr, int64_t ahead_bytes = 0, bool stream = false) {
  accumulate_pairs<MR, NG>(
      acc, pairs, [&](int64_t p, __m512(&cs)[MR][NG]) __attribute__((always_inline)) {
        prefetch_line<NG>(ahead, ahead_bytes, p);
        if (stream) {
#pragma GCC unroll 16
          for (int g = 0; g < NG; ++g)
            _mm_prefetch(reinterpret_cast<const char*>(b[g] + p * 32) + kStreamAhead, _MM_HINT_T0);
        }
        __m512bh w[NG];
#pragma GCC unroll 16
        for (int g = 0; g < NG; ++g) w[g] = (__m512bh)_mm512_loadu_si512(b[g] + p * 32);
        multiply_pair<MR, NG>(a, lda, p, w, cs);
      });
}

// Block-float weights used directly, for few rows. Each activation (bf16) is first multiplied by
// its block's 2^(exp - bias): an integer add to its exponent field, exact because the caller keeps
// activations and the kernel keeps exponents within ranges where no sum leaves the normal numbers
// (microkernels.h); the codes themselves, integers of at most 7 significant bits, are exact in bf16
// and are turned into bf16 pairs by table lookups; then vdpbf16ps as in Bf16TileT. Every product
// equals the one of the decoded path (code x 2^e times the activation, exact in fp32) and is added
// in the same order by the same instruction, so a row gets the same bits here as through
// bfp_to_bf16 and Bf16TileT; a block whose exponents fall outside that range is left to matmul.
// Decoding takes seven vector instructions per 64 weights (CodeDecoder), where converting codes
// to fp32 (vpmovsxbd, vcvtdq2ps) and two fp32 FMAs per row held one row to about half the
// memory's bandwidth (bench/matmul_bench). The scaled activations are made 64 inputs ahead of the
// multiplies that read them, inside the same loop: made all at once before it (with vscalefps,
// as until 2026-12), they stalled the stream of codes for a quarter of a 4-row call, and a
// vector store read back at once as scalars stalls on store forwarding.
// How far ahead the codes are prefetched: the hardware prefetcher alone leaves these loops
// waiting on memory.
constexpr int64_t kPrefetchInputs = 128;
constexpr int64_t kScaleAheadInputs = 64;

template <int MR, int NG>
bool BfpTileT(const uint16_t* a, int64_t lda, const int8_t* const* codes,
              const uint8_t* const* exps, int64_t kn, int exp_bias, float* acc) {
  alignas(64) uint32_t xs[NG][MR][kBfpMaxRange / 2 + 16];  // scaled activations, bf16 pairs
  float saved[MR][NG * 16];                                // acc as it came
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m) std::memcpy(saved[m], acc + m * kAccStride, sizeof saved[m]);
  const __m512i bias = _mm512_set1_epi16(static_cast<int16_t>(exp_bias));
  const __m512i magnitude = _mm512_set1_epi16(0x7FFF);
  __m512i shift_lo = _mm512_set1_epi16(0x7FFF), shift_hi = _mm512_set1_epi16(-0x8000);
  // Inputs [k0, k0 + 32): every row's activations times each group's 2^(exp - bias).
  auto scale = [&](int64_t k0) __attribute__((always_inline)) {
    const __mmask32 mask = static_cast<__mmask32>(first_n(kn - k0));
    __m512i shift[NG];
#pragma GCC unroll 16
    for (int g = 0; g < NG; ++g) {
      const __m512i e =
          _mm512_sub_epi16(_mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(mask, exps[g] + k0)), bias);
      shift_lo = _mm512_mask_min_epi16(shift_lo, mask, shift_lo, e);
      shift_hi = _mm512_mask_max_epi16(shift_hi, mask, shift_hi, e);
      shift[g] = _mm512_slli_epi16(e, 7);
    }
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
      const __m512i x = _mm512_maskz_loadu_epi16(mask, a + m * lda + k0);
      const __mmask32 nonzero = _mm512_test_epi16_mask(x, magnitude);
#pragma GCC unroll 16
      for (int g = 0; g < NG; ++g) {
        _mm512_store_si512(&xs[g][m][k0 / 2], _mm512_mask_add_epi16(x, nonzero, x, shift[g]));
      }
    }
  };
  for (int64_t k0 = 0; k0 < kn && k0 < kScaleAheadInputs; k0 += 32) scale(k0);
  const CodeDecoder decode;
  const int64_t pairs = (kn + 1) / 2;
  __m512i next[NG];
  accumulate_pairs<MR, NG>(
      acc, pairs, [&](int64_t p, __m512(&cs)[MR][NG]) __attribute__((always_inline)) {
        if (p % 16 == 0 && 2 * p + kScaleAheadInputs < kn) scale(2 * p + kScaleAheadInputs);
        __m512i w[NG];
        if (p % 2 == 0) {
#pragma GCC unroll 16
          for (int g = 0; g < NG; ++g) {
            _mm_prefetch(reinterpret_cast<const char*>(codes[g] + (2 * p + kPrefetchInputs) * 16),
                         _MM_HINT_T0);
            decode(codes[g] + 2 * p * 16, codes_mask(2 * p, kn), w[g], next[g]);
          }
        } else {
#pragma GCC unroll 16
          for (int g = 0; g < NG; ++g) w[g] = next[g];
        }
#pragma GCC unroll 16
        for (int m = 0; m < MR; ++m) {
#pragma GCC unroll 16
          for (int g = 0; g < NG; ++g) {
            const __m512bh x = (__m512bh)_mm512_set1_epi32(static_cast<int>(xs[g][m][p]));
            cs[m][g] = _mm512_dpbf16_ps(cs[m][g], x, (__m512bh)w[g]);
          }
        }
      });
  const __m256i lo =
      _mm256_min_epi16(_mm512_castsi512_si256(shift_lo), _mm512_extracti64x4_epi64(shift_lo, 1));
  const __m256i hi =
      _mm256_max_epi16(_mm512_castsi512_si256(shift_hi), _mm512_extracti64x4_epi64(shift_hi, 1));
  if (_mm512_reduce_min_epi32(_mm512_cvtepi16_epi32(lo)) >= kBfpMinShift &&
      _mm512_reduce_max_epi32(_mm512_cvtepi16_epi32(hi)) <= kBfpMaxShift) {
    return true;
  }
  // Exponents too far from the bias for the integer adds above: undone, for matmul to decode.
#pragma GCC unroll 16
  for (int m = 0; m < MR; ++m) std::memcpy(acc + m * kAccStride, saved[m], sizeof saved[m]);
  return false;
}

void Bf16Tile(int rows, int groups, const uint16_t* a, int64_t lda, const uint16_t* const* b,
              int64_t pairs, float* acc, const Ahead& ahead) {
  const int passes = (rows + kTileHeight - 1) / kTileHeight;
  dispatch_tile<kTileHeight>(rows, groups, [&]<int R, int G>(int m0) {
    const Ahead mine = share(ahead, m0 / kTileHeight, passes);
    // A call's first pass streams the block (for the first row tile of a block; a later tile's
    // call, or a panel matmul decoded, finds it in L1, where these prefetches measured level at
    // 16 rows); the call's later passes read what that pass left in L1.
    Bf16TileT<R, G>(a + m0 * lda, lda, b, pairs, acc + m0 * kAccStride, mine.at, mine.bytes,
                    m0 == 0);
  });
}

bool BfpTile(int rows, int groups, const uint16_t* a, int64_t lda, const int8_t* const* codes,
             const uint8_t* const* exps, int64_t kn, int exp_bias, float* acc) {
  // Every pass sees the same exponents, so either all succeed or the first fails.
  bool ok = true;
  dispatch_tile<kTileHeight>(rows, groups, [&]<int R, int G>(int m0) {
    ok = ok && BfpTileT<R, G>(a + m0 * lda, lda, codes, exps, kn, exp_bias, acc + m0 * kAccStride);
  });
  return ok;
}

// Many rows, the first tile of a block: BfpToBf16 of the block's groups into out, each line
// multiplied by the tile's rows as soon as it is decoded, so that the weights stream in while this
// tile computes and the decode's shuffles run beside its multiplies. The products and their order
// are Bf16TileT's over the decoded block.
template <int MR, int NG>
void BfpDecodingTileT(const uint16_t* a, int64_t lda, const int8_t* const* codes,
                      const int16_t* const* shift, int64_t kn, uint16_t* const* out, float* acc) {
  const CodeDecoder decode;
  __m512i next[NG];
  accumulate_pairs<MR, NG>(
      acc, (kn + 1) / 2, [&](int64_t p, __m512(&cs)[MR][NG]) __attribute__((always_inline)) {
        __m512i w[NG];
        if (p % 2 == 0) {
#pragma GCC unroll 16
          for (int g = 0; g < NG; ++g)
            decode_line(decode, codes[g], shift[g], kn, p / 2, out[g], w[g], next[g]);
        } else {
#pragma GCC unroll 16
          for (int g = 0; g < NG; ++g) w[g] = next[g];
        }
        multiply_pair<MR, NG>(a, lda, p, w, cs);
      });
}

bool BfpDecodingTile(int rows, int groups, const uint16_t* a, int64_t lda,
                     const int8_t* const* codes, const uint8_t* const* exps, int64_t kn,
                     int exp_bias, uint16_t* const* out, float* acc, const Ahead& ahead) {
  if (kn > kBfpMaxRange) return false;
  alignas(64) int16_t shifts[kTileGroups][kBfpMaxRange + 32];
  const int16_t* shift[kTileGroups];
  for (int g = 0; g < groups; ++g) {
    if (!exps_in_fast_range(exps[g], kn, exp_bias)) return false;
    make_shifts(exps[g], kn, exp_bias, shifts[g]);
    shift[g] = shifts[g];
  }
  const uint16_t* b[kTileGroups] = {out[0], groups > 1 ? out[1] : nullptr};
  // The first pass streams; the later ones, which read the decoded block from L1, share ahead.
  const int passes = (rows + kTileHeight - 1) / kTileHeight - 1;
  dispatch_tile<kTileHeight>(rows, groups, [&]<int R, int G>(int m0) {
    if (m0 == 0) {
      BfpDecodingTileT<R, G>(a, lda, codes, shift, kn, out, acc);
    } else {
      const Ahead mine = share(ahead, m0 / kTileHeight - 1, passes);
      Bf16TileT<R, G>(a + m0 * lda, lda, b, (kn + 1) / 2, acc + m0 * kAccStride, mine.at,
                      mine.bytes);
    }
  });
  return true;
}

// Decodes four inputs' 16 weights at a time into bf16 pairs. A code has at most 7 significant
// bits, so code x 2^e is exact in bf16: the code's own bf16 bits with e added to the exponent
// field. Exponents that could leave the normal range take the general path (vscalefps, rounding
// to bf16).
void BfpToBf16(const int8_t* codes, const uint8_t* exps, int64_t kn, int exp_bias, uint16_t* out) {
  if (!exps_in_fast_range(exps, kn, exp_bias)) {
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
  const CodeDecoder decode;
  alignas(64) int16_t shift[kBfpMaxRange + 32];        // (exp - bias) << 7 per input
  for (int64_t c0 = 0; c0 < kn; c0 += kBfpMaxRange) {  // c0 is even: pairs never split
    const int64_t cn = kn - c0 < kBfpMaxRange ? kn - c0 : kBfpMaxRange;
    make_shifts(exps + c0, cn, exp_bias, shift);
    for (int64_t l = 0; l < (cn + 3) / 4; ++l) {
      __m512i w0, w1;
      decode_line(decode, codes + c0 * 16, shift, cn, l, out + c0 * 16, w0, w1);
    }
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
extern const MicroKernels kAvx512Bf16Kernels = {"avx512-bf16", nullptr,   Bf16Tile,
                                                BfpTile,       BfpToBf16, BfpDecodingTile,
                                                nullptr,       nullptr,   nullptr};
extern double (*const kAvx512Dpbf16Probe)(int64_t) = Dpbf16Loop;
// Indexed by ReadMethod (probes.h); the buffer is 64-byte aligned, as stream loads need.
extern uint64_t (*const kAvx512ReadProbes[4])(const uint64_t*, size_t) = {
    SumLines<0, 0>, SumLines<1, 1024>, SumLines<1, 4096>, SumLines<2, 4096>};

}  // namespace bringup::cpu
