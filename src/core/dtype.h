// Number formats: bfloat16, float16, and Tenstorrent's block floating point (bfloat8_b,
// bfloat4_b) exactly as tt-metal's host converter defines them (docs: shared/docs/block-float.md).
#pragma once

#include <cstdint>
#include <cstring>

namespace bringup {

inline uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bits_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float bf16_to_f32(uint16_t h) {
  return bits_f32(uint32_t{h} << 16);
}

// Round to nearest, ties to even; NaN stays NaN (quiet).
inline uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float round_to_bf16(float f) {
  return bf16_to_f32(f32_to_bf16(f));
}

float f16_to_f32(uint16_t h);
// Round to nearest even; overflow gives infinity, tiny values f16 subnormals.
uint16_t f32_to_f16(float f);

// One block of 16 values sharing an 8-bit exponent. Codes are sign-magnitude as stored on the
// device: bit (w) is the sign, the low w bits the magnitude with an explicit leading one.
constexpr int kBfpBlock = 16;
constexpr int kBfp8MantissaBits = 7;
constexpr int kBfp4MantissaBits = 3;

struct BfpBlock {
  uint8_t shared_exponent;
  uint8_t codes[kBfpBlock];
};

BfpBlock bfp_encode_block(const float* values, int mantissa_bits);
void bfp_decode_block(const BfpBlock& block, int mantissa_bits, float* out);

// The signed magnitude of a code as a two's-complement integer: what CPU kernels multiply with.
inline int8_t bfp_code_to_int(uint8_t code, int mantissa_bits) {
  const int mag = code & ((1 << mantissa_bits) - 1);
  return static_cast<int8_t>((code >> mantissa_bits) & 1 ? -mag : mag);
}
// A decoded value is int_code * 2^(shared_exponent - bfp_exponent_bias(w)).
inline int bfp_exponent_bias(int mantissa_bits) {
  return 127 + mantissa_bits - 1;
}

// tt-metal tile storage for a 32x32 tile (rows = input index, cols = output channel): 64 exponent
// bytes (face 0 rows 0-15, face 1, face 2, face 3), then each face's codes row-major, packed into
// 32-bit words with element 0 in the lowest bits. bfloat8_b: 1088 bytes, bfloat4_b: 576 bytes.
constexpr int kTile = 32;
int bfp_tile_bytes(int mantissa_bits);
void bfp_pack_tile(const float* tile_row_major, int mantissa_bits, uint8_t* out);
void bfp_unpack_tile(const uint8_t* in, int mantissa_bits, float* tile_row_major);
// Row r (0..15) of face f (0..3) of a tile: one block, its exponent and sign-magnitude codes.
BfpBlock bfp_tile_block(const uint8_t* tile, int mantissa_bits, int face, int row);

}  // namespace bringup
