#include "core/dtype.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace bringup {

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t{h & 0x8000u} << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t man = h & 0x3ff;
  if (exp == 0) {  // zero or subnormal: man * 2^-24, exact in fp32
    const float v = std::ldexp(static_cast<float>(man), -24);
    return bits_f32(f32_bits(v) | sign);
  }
  if (exp == 31) return bits_f32(sign | 0x7f800000u | (man << 13));
  return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t f32_to_f16(float f) {
  const uint32_t u = f32_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00;                    // NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00;                   // rounds to >= 65520: infinity
  if (abs < 0x38800000u) {                                        // below 2^-14: subnormal or zero
    const float scaled = bits_f32(abs) * 16777216.0f;             // in units of 2^-24, exact
    return sign | static_cast<uint16_t>(std::nearbyint(scaled));  // ties to even (default mode)
  }
  const uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  return sign | static_cast<uint16_t>((rounded - 0x38000000u) >> 13);
}

BfpBlock bfp_encode_block(const float* values, int w) {
  BfpBlock b{};
  uint32_t shared = 0;
  for (int i = 0; i < kBfpBlock; ++i) {
    const uint32_t u = f32_bits(values[i]);
    if ((u & 0x7fffffffu) == 0) continue;  // zeros count as exponent 0
    shared = std::max(shared, (u >> 23) & 0xffu);
  }
  b.shared_exponent = static_cast<uint8_t>(shared);
  const int drop = 24 - w;  // low bits of the 24-bit mantissa rounded away
  const uint32_t max_mag = (1u << w) - 1;
  for (int i = 0; i < kBfpBlock; ++i) {
    const uint32_t u = f32_bits(values[i]);
    if ((u & 0x7fffffffu) == 0) {
      b.codes[i] = 0;
      continue;
    }
    const uint32_t sign = u >> 31;
    const uint32_t e = (u >> 23) & 0xffu;
    uint32_t m = (1u << 23) | (u & 0x7fffffu);  // hidden one, also for denormals
    const uint32_t shift = shared - e;
    m = shift >= 32 ? 0 : m >> shift;
    // Round to nearest even on what is left after the shift.
    uint32_t mag = m >> drop;
    const uint32_t rest = m & ((1u << drop) - 1);
    const uint32_t half = 1u << (drop - 1);
    if (rest > half || (rest == half && (mag & 1u))) ++mag;
    mag = std::min(mag, max_mag);
    b.codes[i] = static_cast<uint8_t>(mag == 0 ? 0 : (sign << w) | mag);
  }
  return b;
}

void bfp_decode_block(const BfpBlock& b, int w, float* out) {
  const int scale = static_cast<int>(b.shared_exponent) - bfp_exponent_bias(w);
  for (int i = 0; i < kBfpBlock; ++i) {
    out[i] = std::ldexp(static_cast<float>(bfp_code_to_int(b.codes[i], w)), scale);
  }
}

int bfp_tile_bytes(int w) {
  return 64 + kTile * kTile * (w + 1) / 8;
}

namespace {
// Face f (0..3) row r (0..15) of a 32x32 tile: its first element's (row, col).
inline int face_row(int f, int r) {
  return (f / 2) * 16 + r;
}
inline int face_col(int f) {
  return (f % 2) * 16;
}
}  // namespace

void bfp_pack_tile(const float* tile, int w, uint8_t* out) {
  const int bits = w + 1;
  const int per_word = 32 / bits;
  uint32_t* words = reinterpret_cast<uint32_t*>(out + 64);
  std::fill(words, words + kTile * kTile / per_word, 0u);
  int element = 0;
  for (int f = 0; f < 4; ++f) {
    for (int r = 0; r < 16; ++r) {
      const BfpBlock b = bfp_encode_block(tile + face_row(f, r) * kTile + face_col(f), w);
      out[f * 16 + r] = b.shared_exponent;
      for (int c = 0; c < 16; ++c, ++element) {
        words[element / per_word] |= uint32_t{b.codes[c]} << (bits * (element % per_word));
      }
    }
  }
}

BfpBlock bfp_tile_block(const uint8_t* tile, int w, int f, int r) {
  const int bits = w + 1;
  const int per_word = 32 / bits;
  BfpBlock b{};
  b.shared_exponent = tile[f * 16 + r];
  for (int c = 0; c < 16; ++c) {
    const int element = (f * 16 + r) * 16 + c;
    uint32_t word;  // tiles may sit at any alignment inside a file
    std::memcpy(&word, tile + 64 + 4 * (element / per_word), 4);
    b.codes[c] = static_cast<uint8_t>((word >> (bits * (element % per_word))) & ((1u << bits) - 1));
  }
  return b;
}

void bfp_unpack_tile(const uint8_t* in, int w, float* tile) {
  for (int f = 0; f < 4; ++f) {
    for (int r = 0; r < 16; ++r) {
      bfp_decode_block(bfp_tile_block(in, w, f, r), w, tile + face_row(f, r) * kTile + face_col(f));
    }
  }
}

}  // namespace bringup
