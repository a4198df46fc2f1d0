// Block-float codes to bf16 with AVX-512 VBMI, shared by the two files built for AVX-512
// (micro_avx512.cpp, micro_amx.cpp) and included by no other: table lookups turn a line of codes
// into bf16 pairs, and a block's exponent is added to their exponent fields.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace bringup::cpu {
namespace {

constexpr int64_t kBfpMaxRange = 512;  // inputs per call (matmul's kBlockK)
// How far ahead the decode prefetches codes: the hardware prefetcher alone leaves it waiting on
// memory.
constexpr int64_t kDecodePrefetchInputs = 128;  // 2 KiB of codes ahead

// The bf16 bits of 0..127, low bytes then high bytes, for vpermi2b (7-bit indices).
struct CodeTables {
  alignas(64) uint8_t lo[128];
  alignas(64) uint8_t hi[128];
  // Which code each byte of 64 (four inputs x 16 lanes) takes so that, once looked up,
  // vpunpcklbw / vpunpckhbw of the low and high bytes give the bf16 pairs of inputs (0, 1) and
  // (2, 3) in lane order: 128-bit lane l holds lanes 4l..4l+3 of inputs 0 and 1 alternating in
  // its low 8 bytes, of inputs 2 and 3 in its high 8.
  alignas(64) uint8_t order[64];
};

constexpr CodeTables make_code_tables() {
  CodeTables t{};
  for (int v = 0; v < 128; ++v) {
    int bits = 0;  // bf16 of v: exponent and the 7 fraction bits below the leading one
    if (v > 0) {
      int e = 0;
      while ((v >> (e + 1)) != 0) ++e;
      bits = ((127 + e) << 7) | (((v << (7 - e)) & 0x7F));
    }
    t.lo[v] = static_cast<uint8_t>(bits & 0xFF);
    t.hi[v] = static_cast<uint8_t>(bits >> 8);
  }
  for (int l = 0; l < 4; ++l) {
    for (int i = 0; i < 16; ++i) {
      const int input = (i < 8 ? 0 : 2) + (i & 1), lane = 4 * l + (i % 8) / 2;
      t.order[l * 16 + i] = static_cast<uint8_t>(input * 16 + lane);
    }
  }
  return t;
}
constexpr CodeTables kCodeTables = make_code_tables();
static_assert(kCodeTables.lo[1] == 0x80 && kCodeTables.hi[1] == 0x3F);      // 1.0 = 0x3F80
static_assert(kCodeTables.lo[127] == 0xFE && kCodeTables.hi[127] == 0x42);  // 127 = 0x42FE

// Turns the codes of four inputs (64 bytes, [4][16]) into the bf16 pairs of inputs (0, 1) and
// (2, 3): one byte permute, one absolute value, two table lookups and a sign merge, then the
// low and high bytes interleaved. Bytes outside `mask` read as zero codes.
struct CodeDecoder {
  __m512i lo0 = _mm512_load_si512(kCodeTables.lo), lo1 = _mm512_load_si512(kCodeTables.lo + 64);
  __m512i hi0 = _mm512_load_si512(kCodeTables.hi), hi1 = _mm512_load_si512(kCodeTables.hi + 64);
  __m512i order = _mm512_load_si512(kCodeTables.order);
  __m512i sign = _mm512_set1_epi8(static_cast<char>(0x80));

  __attribute__((always_inline)) void operator()(const int8_t* codes, __mmask64 mask, __m512i& w0,
                                                 __m512i& w1) const {
    // A full line is loaded without a mask: a masked load issued after vector stores (the decoded
    // panel's) waited on them, doubling the cost of a decode (2026-12-03).
    const __m512i raw = _mm512_permutexvar_epi8(order, mask == ~__mmask64{0}
                                                           ? _mm512_loadu_si512(codes)
                                                           : _mm512_maskz_loadu_epi8(mask, codes));
    const __m512i mag = _mm512_abs_epi8(raw);  // magnitudes are at most 127 (core/dtype.h)
    const __m512i lo = _mm512_permutex2var_epi8(lo0, mag, lo1);
    // high byte: the table's, with the code's sign bit
    const __m512i hi =
        _mm512_ternarylogic_epi32(_mm512_permutex2var_epi8(hi0, mag, hi1), raw, sign, 0xF8);
    w0 = _mm512_unpacklo_epi8(lo, hi);
    w1 = _mm512_unpackhi_epi8(lo, hi);
  }
};

// A load mask of the first n elements (none for n <= 0, all 64 from n >= 64); narrower masks
// take its low bits.
inline __mmask64 first_n(int64_t n) {
  return n >= 64 ? ~__mmask64{0} : n <= 0 ? 0 : (__mmask64{1} << n) - 1;
}

// The bytes of the codes of inputs [first, kn) among four from `first`.
inline __mmask64 codes_mask(int64_t first, int64_t kn) {
  return first_n((kn - first) * 16);
}

// The least and greatest of exps[0, kn).
inline void exps_range(const uint8_t* exps, int64_t kn, int& lo, int& hi) {
  __m512i vlo = _mm512_set1_epi8(-1), vhi = _mm512_setzero_si512();
  for (int64_t i = 0; i < kn; i += 64) {
    const __mmask64 m = first_n(kn - i);
    vlo = _mm512_mask_min_epu8(vlo, m, vlo, _mm512_maskz_loadu_epi8(m, exps + i));
    vhi = _mm512_max_epu8(vhi, _mm512_maskz_loadu_epi8(m, exps + i));
  }
  // Fold the four 128-bit lanes onto the first, then the 16 bytes left.
  auto fold = [](__m512i v, auto op) __attribute__((always_inline)) {
    v = op(v, _mm512_shuffle_i64x2(v, v, 0x4E));
    return op(v, _mm512_shuffle_i64x2(v, v, 0xB1));
  };
  lo = _mm512_reduce_min_epu32(_mm512_cvtepu8_epi32(_mm512_castsi512_si128(
      fold(vlo, [](__m512i x, __m512i y) { return _mm512_min_epu8(x, y); }))));
  hi = _mm512_reduce_max_epu32(_mm512_cvtepu8_epi32(_mm512_castsi512_si128(
      fold(vhi, [](__m512i x, __m512i y) { return _mm512_max_epu8(x, y); }))));
}

// Whether BfpToBf16 adds (exp - bias) to the codes' exponent fields (every result normal) rather
// than taking its general path.
inline bool exps_in_fast_range(const uint8_t* exps, int64_t kn, int exp_bias) {
  int lo = 0, hi = 0;
  exps_range(exps, kn, lo, hi);
  return lo - exp_bias >= -126 && hi - exp_bias <= 121;
}

// (exp - bias) << 7 for inputs [0, kn) of one group, 32 at a time (up to 31 entries past kn).
void make_shifts(const uint8_t* exps, int64_t kn, int exp_bias, int16_t* shift) {
  const __m512i bias = _mm512_set1_epi16(static_cast<int16_t>(exp_bias));
  for (int64_t i = 0; i < kn; i += 32) {
    const __mmask32 m = static_cast<__mmask32>(first_n(kn - i));
    const __m512i e = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, exps + i));
    _mm512_storeu_si512(shift + i, _mm512_slli_epi16(_mm512_sub_epi16(e, bias), 7));
  }
}

// BfpToBf16's fast path for one line, inputs [4l, 4l + 4) of a group: the codes' bf16 bits from
// the tables, then (exp - bias) added to the exponent field of every non-zero one (per input pair,
// one broadcast of the two inputs' shifts). An odd last input is paired with a zero code.
__attribute__((always_inline)) inline void decode_line(const CodeDecoder& decode,
                                                       const int8_t* codes, const int16_t* shift,
                                                       int64_t kn, int64_t l, uint16_t* out,
                                                       __m512i& w0, __m512i& w1) {
  auto scaled = [&](__m512i w, int64_t i) __attribute__((always_inline)) {
    int32_t both;
    std::memcpy(&both, shift + i, 4);
    return _mm512_mask_add_epi16(w, _mm512_test_epi16_mask(w, w), w, _mm512_set1_epi32(both));
  };
  const int64_t i = 4 * l;
  // The codes come from memory once: fetch ahead, or the decode waits on every line.
  _mm_prefetch(reinterpret_cast<const char*>(codes + (i + kDecodePrefetchInputs) * 16),
               _MM_HINT_T0);
  decode(codes + i * 16, codes_mask(i, kn), w0, w1);
  w0 = scaled(w0, i);
  w1 = scaled(w1, i + 2);
  _mm512_storeu_si512(out + i * 16, w0);
  if (i + 2 < kn) _mm512_storeu_si512(out + i * 16 + 32, w1);
}

}  // namespace
}  // namespace bringup::cpu
