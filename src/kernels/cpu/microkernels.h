// Matmul micro-kernels: the innermost loops of linear, over a tile of up to tile_rows activation
// rows (kTileRows but for AMX's set) and kTileGroups groups of 16 output features
// (packed_weight.h). Each adds its tile's products into an fp32 accumulator tile
// acc[row * kAccStride + group * 16 + lane].
// Two implementations: portable ones written with Highway (any CPU), and AVX512-BF16 ones that
// use vdpbf16ps and vscalefps, which Debian's Highway 1.0.3 cannot emit (it has no Zen 4/5
// target and widens bf16 to fp32 instead, at half the multiply throughput). The AVX-512 file is
// compiled with AVX-512 flags and reached only through avx512_bf16_kernels(). A third set, on
// request, multiplies bf16 on AMX tiles (micro_amx.cpp, amx_bf16_kernels()).
#pragma once

#include <cstdint>

namespace bringup::cpu {

constexpr int kTileRows = 8;
constexpr int kTileGroups = 2;
constexpr int64_t kAccStride = 32;

// acc += a[rows][k] * W_g[k][16] for k in [0, kn); a is fp32, row stride lda; b[g] points at the
// group's first k.
using F32TileFn = void (*)(int rows, int groups, const float* a, int64_t lda, const float* const* b,
                           int64_t kn, float* acc);
// Weights a tile should bring into the cache while it computes from weights already there: bytes
// [0, bytes) after each at[g], the block its caller takes next. Spread over the tile's pairs, one
// line a pair, so that memory keeps streaming while the block's later row tiles run from L1.
struct Ahead {
  const char* at[kTileGroups] = {};
  int64_t bytes = 0;
};
// Part `part` of `parts` of ahead, in whole lines and in order, for one of the tiles that share it.
inline Ahead share(const Ahead& ahead, int64_t part, int64_t parts) {
  Ahead s;
  if (ahead.bytes <= 0) return s;
  const int64_t lines = (ahead.bytes + 63) / 64;
  const int64_t lo = lines * part / parts, hi = lines * (part + 1) / parts;
  for (int g = 0; g < kTileGroups; ++g) s.at[g] = ahead.at[g] ? ahead.at[g] + lo * 64 : nullptr;
  s.bytes = (hi - lo) * 64;
  return s;
}

// Same over `pairs` input pairs; a is bf16 pairs (row stride lda elements), b[g] in the
// [pairs][16][2] layout. Products are exact in fp32, sums in fp32.
using Bf16TileFn = void (*)(int rows, int groups, const uint16_t* a, int64_t lda,
                            const uint16_t* const* b, int64_t pairs, float* acc,
                            const Ahead& ahead);
// Block-float weights used directly (for few rows): a is bf16 as for Bf16TileFn (row stride lda
// elements), codes[g] [kn][16] int8, exps[g] [kn]; weight = code * 2^(exp - exp_bias).
// Bit-identical to decoding the weights with BfpToBf16 and running Bf16TileFn of the same set (a
// row's result must not depend on how many rows share the step). The caller guarantees that the
// exponent field of every non-zero activation lies in [kBfpActivationExpLo, kBfpActivationExpHi].
// Within that range and shifts exp - exp_bias in [kBfpMinShift, kBfpMaxShift], an activation times
// its block's power of two is a normal number (an integer add to its exponent field), so the
// product equals the decoded path's exactly. A block with a shift outside that range returns false
// with acc unchanged, for the caller to decode. A set may decline any call this way (the AMX set
// takes only whole steps of 32 inputs).
using BfpTileFn = bool (*)(int rows, int groups, const uint16_t* a, int64_t lda,
                           const int8_t* const* codes, const uint8_t* const* exps, int64_t kn,
                           int exp_bias, float* acc);
constexpr int kBfpActivationExpLo = 64, kBfpActivationExpHi = 190;  // |a| in [2^-63, 2^64)
constexpr int kBfpMinShift = -62, kBfpMaxShift = 63;
static_assert(kBfpActivationExpLo + kBfpMinShift >= 1 && kBfpActivationExpHi + kBfpMaxShift <= 254);
// Decodes one block-float group (kn inputs) into the bf16 pair layout, so that many rows can use
// the bf16 tile; an odd last input is paired with zero. Every decoded value is exact in bf16.
using BfpToBf16Fn = void (*)(const int8_t* codes, const uint8_t* exps, int64_t kn, int exp_bias,
                             uint16_t* out);

// Many rows: Bf16TileFn over BfpToBf16's decoding of the block into out (a panel the caller
// keeps for the block's later row tiles), the first tile multiplied line by line as the weights
// are decoded, so that they stream in while it computes (docs/kernels.md). False, with nothing
// done, when the kernel set would decode this block on a path of its own for extreme exponents;
// the caller then decodes it with BfpToBf16 first.
using BfpDecodingTileFn = bool (*)(int rows, int groups, const uint16_t* a, int64_t lda,
                                   const int8_t* const* codes, const uint8_t* const* exps,
                                   int64_t kn, int exp_bias, uint16_t* const* out, float* acc,
                                   const Ahead& ahead);

// ggml block weights (GGUF's Q8_0, Q4_K and Q6_K) used directly, for any number of rows; a is fp32
// as it is. Q8_0: codes[g] [kn][16] int8, scales[g] [kn/32][16] fp16; weight = d * code.
// Q4_K: codes[g] [kn/2][16] nibble pairs, scales[g] [kn/256][2][16] fp16 (d, dmin),
// subs[g] [kn/32][2][16] uint8 (scale, min); weight = (d * scale) * code - dmin * min.
// Each weight is exactly ggml's dequantized value, and acc = fma(a, weight, acc) input by input,
// so a result is bit-identical to that loop over dequantize_row_* output.
using Q8_0TileFn = void (*)(int rows, int groups, const float* a, int64_t lda,
                            const int8_t* const* codes, const uint16_t* const* scales, int64_t kn,
                            float* acc);
using Q4KTileFn = void (*)(int rows, int groups, const float* a, int64_t lda,
                           const uint8_t* const* codes, const uint16_t* const* scales,
                           const uint8_t* const* subs, int64_t kn, float* acc);
// Q6_K: codes[g] [kn][16] int8, scales[g] [kn/256][16] fp16 d, subs[g] [kn/16][16] int8;
// weight = (d * scale) * code (two roundings at most, in that order, as ggml's).
using Q6KTileFn = void (*)(int rows, int groups, const float* a, int64_t lda,
                           const int8_t* const* codes, const uint16_t* const* scales,
                           const int8_t* const* subs, int64_t kn, float* acc);

struct MicroKernels {
  const char* name;
  F32TileFn f32;
  Bf16TileFn bf16;
  BfpTileFn bfp;
  BfpToBf16Fn bfp_to_bf16;
  BfpDecodingTileFn bfp_decoding;
  Q8_0TileFn q8_0;
  Q4KTileFn q4_k;
  Q6KTileFn q6_k;
  // The most rows a tile takes.
  int tile_rows = kTileRows;
  // Rows up to which linear uses `bfp` (the direct block-float kernel) rather than decoding.
  int bfp_direct_rows = 4;
  // Rows up to which a row tile of bf16 or direct block-float weights takes all of k in one call
  // rather than kBlockK at a time (the AMX set keeps its sums in tiles across blocks); 0 for
  // never. Either way a row gets the same bits: the kernels' sums pass through acc exactly.
  int whole_k_rows = 0;
};

const MicroKernels& portable_kernels();
bool cpu_has_avx512_bf16();
// nullptr when this CPU lacks AVX512-BF16.
const MicroKernels* avx512_bf16_kernels();
// nullptr when this CPU lacks AMX-BF16 or AVX512-BF16, or the OS refuses tile data.
const MicroKernels* amx_bf16_kernels();
// AVX512-BF16's set where the CPU has it, else Highway's (AMX's on request); in the environment
// BRINGUP_KERNELS=portable, avx512-bf16 or avx512-amx picks one by name; a name that is not a set,
// or a set this machine cannot run, is an Error.
const MicroKernels& best_kernels();

}  // namespace bringup::cpu
