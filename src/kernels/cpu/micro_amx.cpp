// AMX-BF16 matmul micro-kernel (Sapphire Rapids and later Xeons): one TDPBF16PS multiplies a tile
// of up to 16 rows × 32 inputs by 32 inputs × 16 outputs, about 13 times the rate of the
// AVX512-BF16 tile at 16 rows (hot, one 512-input block of 2 groups: 1066 against 13902 TSC
// cycles; 8 rows 1056 against 6950; 4 rows 1054 against 3510).
//
// AMX does not round as vdpbf16ps does (which adds a pair's two products one at a time), so its
// sums differ in the last bits from the AVX512-BF16 set's. A row's result must not depend on its
// batch, so this set runs every row count through the same tile, with the same products in the
// same order: few rows (up to kAmxRows) take all of k in one call, their sums held in tiles,
// bf16 weights loaded straight into B tiles (their layout, [pairs][16][2], is the B tile's) and
// block float used directly (the block exponents put on the activations, the codes turned into
// bf16 by table lookups); more rows share a panel of decoded weights, block by block. With few
// rows as fast as the AVX512-BF16 set and much faster with more (docs/kernels.md, "AMX"); still
// on request (BRINGUP_KERNELS=avx512-amx) until the whole suite has run under it.
//
// Built like micro_avx512.cpp (with -mamx-* added), and reached only after CPUID and the kernel's
// permission for the tile data (microkernels.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <cstdint>
#include <initializer_list>

#include "kernels/cpu/bfp_decode_avx512.h"
#include "kernels/cpu/microkernels.h"

namespace bringup::cpu {

namespace {

// Pairs per TDPBF16PS: a tile row is 64 bytes.
constexpr int64_t kStepPairs = 16;
// Rows per tile: AMX's most.
constexpr int kAmxRows = 16;
// Steps decoded ahead of the multiplies (2 and 4 were no faster in matmul_bench).
constexpr int64_t kDecodeAhead = 1;
// How far ahead a tile that streams its own weights (no `ahead` to share) prefetches them.
constexpr int64_t kPrefetchSteps = 4;

// The palette-1 tile configuration (Intel SDM, LDTILECFG).
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tiles: 0, 1 the two groups' sums, 4 and 7 activations (the direct kernel scales them per
// group), 5, 6 the two groups' weights. Loaded at every call: the pool's caller runs panels too,
// and other code in that thread (a library of the Python host, say) may have configured the tiles
// since. Kept per thread instead, matmul_bench was 4-8% faster with a call per block; with a call
// per row tile over all of k (MicroKernels::whole_k_rows) it is once per 32 outputs.
void configure(int rows) {
  TileConfig c;
  for (int t : {0, 1, 4, 7}) {
    c.rows[t] = static_cast<uint8_t>(rows);
    c.colsb[t] = 64;
  }
  for (int t : {5, 6}) {
    c.rows[t] = kStepPairs;
    c.colsb[t] = 64;
  }
  // GCC 12 does not see LDTILECFG read the rows and widths, and drops their stores without this.
  asm volatile("" : : "r"(&c) : "memory");
  _tile_loadconfig(&c);
}

// The rows × groups tile over `pairs` input pairs: whole steps on AMX, each group's sums in one
// tile from acc on (so that a call over all of k and calls block by block give the same bits:
// the sums pass through acc exactly), then a last partial step pair by pair with vdpbf16ps. The
// order depends on `pairs` alone, never on the rows. One chain a group is enough: a TDPBF16PS
// that waits on the previous one's sums costs no more than one that does not (13 TSC cycles
// either way, at 1 to 16 rows, 2026-12-05). before(s) runs ahead of step s's tile loads
// (before(steps) ahead of the last partial step): the decoding tile decodes step s + 1 there, so
// that the multiplies of one step run beside the decode of the next.
template <class Before>
__attribute__((always_inline)) inline void amx_tile(int rows, int groups, const uint16_t* a,
                                                    int64_t lda, const uint16_t* const* b,
                                                    int64_t pairs, float* acc, Before&& before) {
  const int64_t steps = pairs / kStepPairs;
  if (steps > 0) {
    configure(rows);
    const int64_t stride_a = lda * 2, stride_acc = kAccStride * 4;
    _tile_loadd(0, acc, stride_acc);
    if (groups == 2) _tile_loadd(1, acc + 16, stride_acc);
    for (int64_t s = 0; s < steps; ++s) {
      before(s);
      _tile_loadd(4, a + s * kStepPairs * 2, stride_a);
      _tile_loadd(5, b[0] + s * kStepPairs * 32, 64);
      _tile_dpbf16ps(0, 4, 5);
      if (groups == 2) {
        _tile_loadd(6, b[1] + s * kStepPairs * 32, 64);
        _tile_dpbf16ps(1, 4, 6);
      }
    }
    _tile_stored(0, acc, stride_acc);
    if (groups == 2) _tile_stored(1, acc + 16, stride_acc);
  }
  if (steps * kStepPairs == pairs) return;
  before(steps);
  for (int m = 0; m < rows; ++m) {
    for (int g = 0; g < groups; ++g) {
      float* c = acc + m * kAccStride + g * 16;
      __m512 sum = _mm512_loadu_ps(c);
      for (int64_t p = steps * kStepPairs; p < pairs; ++p) {
        const uint32_t pair = static_cast<uint32_t>(a[m * lda + 2 * p]) |
                              static_cast<uint32_t>(a[m * lda + 2 * p + 1]) << 16;
        sum = _mm512_dpbf16_ps(sum, (__m512bh)_mm512_set1_epi32(static_cast<int>(pair)),
                               (__m512bh)_mm512_loadu_si512(b[g] + p * 32));
      }
      _mm512_storeu_ps(c, sum);
    }
  }
}

// bf16 weights: the tile, bringing `ahead` (microkernels.h) into the cache an even share a step;
// with nothing to share (few rows: one row tile streams its weights from memory), its own weights
// kPrefetchSteps steps ahead.
void AmxBf16Tile(int rows, int groups, const uint16_t* a, int64_t lda, const uint16_t* const* b,
                 int64_t pairs, float* acc, const Ahead& ahead) {
  if (ahead.bytes == 0) {
    const int64_t steps = pairs / kStepPairs;
    amx_tile(
        rows, groups, a, lda, b, pairs, acc, [&](int64_t s) __attribute__((always_inline)) {
          if (s + kPrefetchSteps >= steps) return;
          for (int g = 0; g < groups; ++g) {
            const char* at =
                reinterpret_cast<const char*>(b[g] + (s + kPrefetchSteps) * kStepPairs * 32);
            for (int l = 0; l < kStepPairs; ++l) _mm_prefetch(at + l * 64, _MM_HINT_T0);  // 1 KiB
          }
        });
    return;
  }
  const int64_t steps = pairs / kStepPairs + 1;
  const int64_t lines = (ahead.bytes + 63) / 64, per_step = (lines + steps - 1) / steps;
  amx_tile(
      rows, groups, a, lda, b, pairs, acc, [&](int64_t s) __attribute__((always_inline)) {
        for (int64_t l = s * per_step; l < (s + 1) * per_step && l < lines; ++l) {
          for (int g = 0; g < groups; ++g) _mm_prefetch(ahead.at[g] + l * 64, _MM_HINT_T1);
        }
      });
}

// Block float used directly, for few rows and all of k in one call (whole steps only): as the
// AVX512-BF16 set's direct kernel, each group's block exponents go onto the activations (an
// integer add to their exponent fields, exact within the ranges of microkernels.h) and the codes
// are turned into bf16 by table lookups alone, into a ring of two steps that the next step's
// decode refills while AMX multiplies. Each product equals the decoded path's (code · 2^e times
// the activation) and goes through the same tile in the same order, so a row gets the bits that
// AmxBfpDecodingTile gives it among many rows. Against decoding the weights (the exponent added to
// every weight, then the whole block stored and multiplied), one row of Arcee-Spark's gate_up
// went from 7.1-8.1 to 4.0-4.4 ms, and the AVX512-BF16 set's direct kernel takes 4.3-4.6.
bool AmxBfpTile(int rows, int groups, const uint16_t* a, int64_t lda, const int8_t* const* codes,
                const uint8_t* const* exps, int64_t kn, int exp_bias, float* acc) {
  const int64_t steps = kn / (2 * kStepPairs);
  if (rows > kAmxRows || steps * 2 * kStepPairs != kn) return false;
  for (int g = 0; g < groups; ++g) {
    int lo = 255, hi = 0;
    exps_range(exps[g], kn, lo, hi);
    if (lo - exp_bias < kBfpMinShift || hi - exp_bias > kBfpMaxShift) return false;
  }
  constexpr int kRing = 2;
  constexpr int64_t kStepLines = kStepPairs / 2;  // lines of four inputs' codes
  alignas(64) uint16_t w[kTileGroups][kRing][kStepPairs * 32];
  alignas(64) uint16_t xs[kTileGroups][kRing][kAmxRows][kStepPairs * 2];
  const CodeDecoder decode;
  const __m512i bias = _mm512_set1_epi16(static_cast<int16_t>(exp_bias));
  const __m512i magnitude = _mm512_set1_epi16(0x7FFF);
  // Step s into ring slot s % kRing: every row's activations times each group's 2^(e - bias),
  // and the codes' bf16 values.
  auto prepare = [&](int64_t s) __attribute__((always_inline)) {
    const int slot = static_cast<int>(s % kRing);
    const int64_t k0 = s * 2 * kStepPairs;
    for (int g = 0; g < groups; ++g) {
      const __m512i e =
          _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(exps[g] + k0)));
      const __m512i shift = _mm512_slli_epi16(_mm512_sub_epi16(e, bias), 7);
      for (int m = 0; m < rows; ++m) {
        const __m512i x = _mm512_loadu_si512(a + m * lda + k0);
        _mm512_store_si512(xs[g][slot][m], _mm512_mask_add_epi16(
                                               x, _mm512_test_epi16_mask(x, magnitude), x, shift));
      }
    }
    for (int64_t l = 0; l < kStepLines; ++l) {
      for (int g = 0; g < groups; ++g) {
        const int8_t* line = codes[g] + (k0 + 4 * l) * 16;
        _mm_prefetch(reinterpret_cast<const char*>(line + kDecodePrefetchInputs * 16), _MM_HINT_T0);
        __m512i w0, w1;
        decode(line, ~__mmask64{0}, w0, w1);
        _mm512_store_si512(w[g][slot] + l * 64, w0);
        _mm512_store_si512(w[g][slot] + l * 64 + 32, w1);
      }
    }
  };
  prepare(0);
  configure(rows);
  const int64_t stride_acc = kAccStride * 4;
  _tile_loadd(0, acc, stride_acc);
  if (groups == 2) _tile_loadd(1, acc + 16, stride_acc);
  for (int64_t s = 0; s < steps; ++s) {
    const int slot = static_cast<int>(s % kRing);
    _tile_loadd(4, xs[0][slot], 64);
    _tile_loadd(5, w[0][slot], 64);
    _tile_dpbf16ps(0, 4, 5);
    if (groups == 2) {
      _tile_loadd(7, xs[1][slot], 64);
      _tile_loadd(6, w[1][slot], 64);
      _tile_dpbf16ps(1, 7, 6);
    }
    if (s + 1 < steps) prepare(s + 1);
  }
  _tile_stored(0, acc, stride_acc);
  if (groups == 2) _tile_stored(1, acc + 16, stride_acc);
  return true;
}

// Block float, for any number of rows: the tile over the block as it is decoded into out, a step
// ahead (lines of 4 inputs, 8 to a step), so that the multiplies of one step run beside the decode
// of the next. Exponents outside BfpToBf16's fast range are left to matmul, which decodes the
// block first (microkernels.h).
bool AmxBfpDecodingTile(int rows, int groups, const uint16_t* a, int64_t lda,
                        const int8_t* const* codes, const uint8_t* const* exps, int64_t kn,
                        int exp_bias, uint16_t* const* out, float* acc,
                        const Ahead& /*ahead*/) {  // it streams already
  if (kn > kBfpMaxRange) return false;
  for (int g = 0; g < groups; ++g) {
    if (!exps_in_fast_range(exps[g], kn, exp_bias)) return false;
  }
  const uint16_t* b[kTileGroups] = {out[0], groups > 1 ? out[1] : nullptr};
  alignas(64) int16_t shifts[kTileGroups][kBfpMaxRange + 32];
  for (int g = 0; g < groups; ++g) make_shifts(exps[g], kn, exp_bias, shifts[g]);
  const CodeDecoder decode;
  const int64_t lines = (kn + 3) / 4;
  constexpr int64_t kStepLines = kStepPairs / 2;
  auto decode_lines = [&](int64_t from, int64_t to) __attribute__((always_inline)) {
    for (int64_t l = from; l < to && l < lines; ++l) {
      for (int g = 0; g < groups; ++g) {
        __m512i w0, w1;
        decode_line(decode, codes[g], shifts[g], kn, l, out[g], w0, w1);
      }
    }
  };
  // Steps [0, kDecodeAhead) first; before step s, step s + kDecodeAhead (before the last whole
  // step, and before the partial one, everything left).
  int64_t done = kDecodeAhead * kStepLines;
  decode_lines(0, done);
  const int64_t pairs = (kn + 1) / 2, steps = pairs / kStepPairs;
  amx_tile(
      rows, groups, a, lda, b, pairs, acc, [&](int64_t s) __attribute__((always_inline)) {
        const int64_t to = s + 1 >= steps ? lines : (s + 1 + kDecodeAhead) * kStepLines;
        decode_lines(done, to);
        done = to > done ? to : done;
      });
  return true;
}

}  // namespace

// f32 and the ggml block types come from the portable set, bfp_to_bf16 from the AVX512-BF16 one
// (microkernels.cpp). A row tile takes all of k in one call, its sums held in tiles throughout.
extern const MicroKernels kAmxBf16Kernels = {
    "avx512-amx", nullptr, AmxBf16Tile, AmxBfpTile, nullptr,  AmxBfpDecodingTile,
    nullptr,      nullptr, nullptr,     kAmxRows,   kAmxRows, kAmxRows};

}  // namespace bringup::cpu
