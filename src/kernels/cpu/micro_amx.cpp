// AMX-BF16 matmul micro-kernel (Sapphire Rapids and later Xeons): one TDPBF16PS multiplies a tile
// of up to 16 rows × 32 inputs by 32 inputs × 16 outputs, about 13 times the rate of the
// AVX512-BF16 tile at 16 rows (hot, one 512-input block of 2 groups: 1066 against 13902 TSC
// cycles; 8 rows 1056 against 6950; 4 rows 1054 against 3510).
//
// AMX does not round as vdpbf16ps does (which adds a pair's two products one at a time), so its
// sums differ in the last bits from the AVX512-BF16 set's. A row's result must not depend on its
// batch, so this set runs every row count through the same tile: block float is decoded to bf16
// a step ahead of its multiply (there is no direct kernel), and the bf16 weights' layout,
// [pairs][16][2], is already the B tile's. One row is slower than with the AVX512-BF16 set, so
// this set runs only when asked for (docs/kernels.md, "AMX").
//
// Built like micro_avx512.cpp (with -mamx-* added), and reached only after CPUID and the kernel's
// permission for the tile data (microkernels.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/bfp_decode_avx512.h"
#include "kernels/cpu/microkernels.h"

namespace bringup::cpu {

namespace {

// Pairs per TDPBF16PS: a tile row is 64 bytes.
constexpr int64_t kStepPairs = 16;
// Steps decoded ahead of the multiplies (2 and 4 were no faster in matmul_bench).
constexpr int64_t kDecodeAhead = 1;

// The palette-1 tile configuration (Intel SDM, LDTILECFG).
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tiles: 0, 1 the two groups' sums of even steps (they start from acc), 2, 3 those of odd steps
// (two chains, so that one TDPBF16PS need not wait for the previous), 4 the activations, 5, 6 the
// two groups' weights. Loaded at every call: the pool's caller runs panels too, and other code in
// that thread (a library of the Python host, say) may have configured the tiles since. Kept per
// thread instead, matmul_bench was 4-8% faster.
void configure(int rows) {
  TileConfig c;
  for (int t = 0; t < 5; ++t) {
    c.rows[t] = static_cast<uint8_t>(rows);
    c.colsb[t] = 64;
  }
  for (int t = 5; t < 7; ++t) {
    c.rows[t] = kStepPairs;
    c.colsb[t] = 64;
  }
  // GCC 12 does not see LDTILECFG read the rows and widths, and drops their stores without this.
  asm volatile("" : : "r"(&c) : "memory");
  _tile_loadconfig(&c);
}

// The rows × groups tile over `pairs` input pairs: whole steps on AMX, even steps into one sum
// and odd ones into another (added at the end, even + odd), then a last partial step pair by pair
// with vdpbf16ps. The order depends on `pairs` alone, never on the rows. before(s) runs ahead of
// step s's tile loads (before(steps) ahead of the last partial step): the decoding tile decodes
// step s + 1 there, so that the multiplies of one step run beside the decode of the next.
template <class Before>
__attribute__((always_inline)) inline void amx_tile(int rows, int groups, const uint16_t* a,
                                                    int64_t lda, const uint16_t* const* b,
                                                    int64_t pairs, float* acc, Before&& before) {
  const int64_t steps = pairs / kStepPairs;
  if (steps > 0) {
    configure(rows);
    const int64_t stride_a = lda * 2, stride_acc = kAccStride * 4;
    _tile_loadd(0, acc, stride_acc);
    _tile_zero(2);
    if (groups == 2) {
      _tile_loadd(1, acc + 16, stride_acc);
      _tile_zero(3);
    }
    for (int64_t s = 0; s < steps; ++s) {
      before(s);
      _tile_loadd(4, a + s * kStepPairs * 2, stride_a);
      _tile_loadd(5, b[0] + s * kStepPairs * 32, 64);
      if (s % 2 == 0) {
        _tile_dpbf16ps(0, 4, 5);
      } else {
        _tile_dpbf16ps(2, 4, 5);
      }
      if (groups == 2) {
        _tile_loadd(6, b[1] + s * kStepPairs * 32, 64);
        if (s % 2 == 0) {
          _tile_dpbf16ps(1, 4, 6);
        } else {
          _tile_dpbf16ps(3, 4, 6);
        }
      }
    }
    alignas(64) float odd[kTileRows][kAccStride];
    _tile_stored(0, acc, stride_acc);
    _tile_stored(2, odd, sizeof odd[0]);
    if (groups == 2) {
      _tile_stored(1, acc + 16, stride_acc);
      _tile_stored(3, &odd[0][16], sizeof odd[0]);
    }
    for (int m = 0; m < rows; ++m) {
      for (int g = 0; g < groups; ++g) {
        float* c = acc + m * kAccStride + g * 16;
        _mm512_storeu_ps(c, _mm512_add_ps(_mm512_loadu_ps(c), _mm512_load_ps(&odd[m][g * 16])));
      }
    }
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

// bf16 weights: the tile, bringing `ahead` (microkernels.h) into the cache an even share a step.
void AmxBf16Tile(int rows, int groups, const uint16_t* a, int64_t lda, const uint16_t* const* b,
                 int64_t pairs, float* acc, const Ahead& ahead) {
  const int64_t steps = pairs / kStepPairs + 1;
  const int64_t lines = (ahead.bytes + 63) / 64, per_step = (lines + steps - 1) / steps;
  amx_tile(
      rows, groups, a, lda, b, pairs, acc, [&](int64_t s) __attribute__((always_inline)) {
        for (int64_t l = s * per_step; l < (s + 1) * per_step && l < lines; ++l) {
          for (int g = 0; g < groups; ++g) _mm_prefetch(ahead.at[g] + l * 64, _MM_HINT_T1);
        }
      });
}

// Block float, for any number of rows: the tile over the block as it is decoded into out, a step
// ahead (lines of 4 inputs, 8 to a step), so that one row streams its codes as the AVX512-BF16
// set's direct kernel does. Exponents outside BfpToBf16's fast range are left to matmul, which
// decodes the block first (microkernels.h).
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

// bfp (the direct kernel) is null: block float always takes the decoding tile. f32 and the ggml
// block types come from the portable set, bfp_to_bf16 from the AVX512-BF16 one (microkernels.cpp).
extern const MicroKernels kAmxBf16Kernels = {"avx512-amx", nullptr, AmxBf16Tile,
                                             nullptr,      nullptr, AmxBfpDecodingTile,
                                             nullptr,      nullptr, nullptr};

}  // namespace bringup::cpu
