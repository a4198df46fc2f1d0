// Number formats: bf16 rounding, f16, and block float bit-exact against tt-metal's converter.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/dtype.h"
#include "kernels/cpu/convert.h"

namespace bringup {
namespace {

uint32_t hex(const std::string& s) {
  return static_cast<uint32_t>(std::stoul(s, nullptr, 16));
}

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(bits_f32(0x3f808000)), 0x3f80);  // tie, even stays
  EXPECT_EQ(f32_to_bf16(bits_f32(0x3f818000)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(f32_to_bf16(bits_f32(0x3f808001)), 0x3f81);  // above the tie
  EXPECT_EQ(f32_to_bf16(bits_f32(0x7f7fffff)), 0x7f80);  // overflows to inf
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  EXPECT_EQ(bf16_to_f32(0xc040), -3.0f);
}

TEST(F16, DecodesNormalsSubnormalsAndSpecials) {
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0xc000), -2.0f);
  EXPECT_EQ(f16_to_f32(0x7bff), 65504.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_f32(0x8000), -0.0f);
  EXPECT_TRUE(std::signbit(f16_to_f32(0x8000)));
  EXPECT_TRUE(std::isinf(f16_to_f32(0x7c00)));
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7e00)));
}

TEST(F16, EncodesWithRoundToNearestEven) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);  // the tie above the largest rounds up: infinity
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);             // tie to even
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie, even stays
  EXPECT_EQ(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie, odd rounds up
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(NAN))));
  // Every f16 value survives the round trip.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;  // NaNs
    ASSERT_EQ(f32_to_f16(f16_to_f32(static_cast<uint16_t>(h))), h) << h;
  }
}

class BlockFloatVectors : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ifstream in(std::string(BRINGUP_TEST_DATA) + "/block-float-vectors.json");
    ASSERT_TRUE(in) << "missing block-float-vectors.json";
    doc_ = nlohmann::json::parse(in);
    ASSERT_GE(doc_["blocks"].size(), 10u);
  }
  void check(const char* key, int bits) {
    int index = 0;
    for (const auto& block : doc_["blocks"]) {
      SCOPED_TRACE(std::string(key) + " block " + std::to_string(index++));
      float in[16];
      for (int i = 0; i < 16; ++i) in[i] = bits_f32(hex(block["input_bits"][i]));
      const auto& want = block[key];
      // Encode: exponent and every code bit for bit.
      const BfpBlock b = bfp_encode_block(in, bits);
      EXPECT_EQ(b.shared_exponent, want["shared_exponent"].get<int>());
      for (int i = 0; i < 16; ++i) EXPECT_EQ(b.codes[i], want["codes"][i].get<int>()) << i;
      // The vectorized encoder used at load: the same exponent and codes (as signed integers).
      int8_t codes[16];
      uint8_t exp = 0;
      cpu::encode_bfp_blocks(in, 1, bits, codes, &exp);
      EXPECT_EQ(exp, b.shared_exponent);
      for (int i = 0; i < 16; ++i) EXPECT_EQ(codes[i], bfp_code_to_int(b.codes[i], bits)) << i;
      // Decode the expected codes: every value bit for bit.
      BfpBlock given{};
      given.shared_exponent = static_cast<uint8_t>(want["shared_exponent"].get<int>());
      for (int i = 0; i < 16; ++i)
        given.codes[i] = static_cast<uint8_t>(want["codes"][i].get<int>());
      float out[16];
      bfp_decode_block(given, bits, out);
      for (int i = 0; i < 16; ++i) {
        EXPECT_EQ(f32_bits(out[i]), hex(want["decoded_bits"][i])) << i;
      }
    }
  }
  nlohmann::json doc_;
};

TEST_F(BlockFloatVectors, Bfloat8bBitExact) {
  check("bfp8_b", kBfp8MantissaBits);
}
TEST_F(BlockFloatVectors, Bfloat4bBitExact) {
  check("bfp4_b", kBfp4MantissaBits);
}

// The vectorized encoder against the scalar one on many random blocks: exponents spread over the
// whole range (denormals, zeros and exact ties among them), both widths.
TEST(BlockFloat, VectorizedEncoderMatchesScalarBitForBit) {
  std::mt19937 rng(7);
  constexpr int64_t kBlocks = 4096;
  std::vector<float> values(kBlocks * 16);
  for (int64_t b = 0; b < kBlocks; ++b) {
    const int spread = static_cast<int>(rng() % 40);
    const int base = static_cast<int>(rng() % 250);
    for (int i = 0; i < 16; ++i) {
      uint32_t bits =
          (rng() & 0x807fffffu) |
          (static_cast<uint32_t>(std::clamp(base - static_cast<int>(rng() % (spread + 1)), 0, 254))
           << 23);
      if (rng() % 8 == 0) bits &= 0xffff0000u;   // short mantissas: ties when rounded
      if (rng() % 16 == 0) bits &= 0x80000000u;  // zeros of either sign
      values[b * 16 + i] = bits_f32(bits);
    }
  }
  for (int mbits : {kBfp8MantissaBits, kBfp4MantissaBits}) {
    std::vector<int8_t> codes(values.size());
    std::vector<uint8_t> exps(kBlocks);
    cpu::encode_bfp_blocks(values.data(), kBlocks, mbits, codes.data(), exps.data());
    int mismatches = 0;
    for (int64_t b = 0; b < kBlocks; ++b) {
      const BfpBlock want = bfp_encode_block(&values[b * 16], mbits);
      mismatches += exps[b] != want.shared_exponent;
      for (int i = 0; i < 16; ++i) {
        mismatches += codes[b * 16 + i] != bfp_code_to_int(want.codes[i], mbits);
      }
    }
    EXPECT_EQ(mismatches, 0) << mbits << " mantissa bits";
  }
}

TEST(BlockFloat, CodeToIntIsSignedMagnitude) {
  EXPECT_EQ(bfp_code_to_int(0x7f, 7), 127);
  EXPECT_EQ(bfp_code_to_int(0xff, 7), -127);
  EXPECT_EQ(bfp_code_to_int(0x0f, 3), -7);
  EXPECT_EQ(bfp_code_to_int(0x07, 3), 7);
}

// A tile packs 64 face-row blocks; unpacking gives each block's decoded values in place.
TEST(BlockFloat, TileRoundTripMatchesBlocks) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  for (int bits : {kBfp8MantissaBits, kBfp4MantissaBits}) {
    std::vector<float> tile(kTile * kTile);
    for (float& v : tile) v = dist(rng);
    std::vector<uint8_t> packed(bfp_tile_bytes(bits));
    EXPECT_EQ(packed.size(), bits == 7 ? 1088u : 576u);
    bfp_pack_tile(tile.data(), bits, packed.data());
    std::vector<float> back(kTile * kTile);
    bfp_unpack_tile(packed.data(), bits, back.data());
    for (int r = 0; r < kTile; ++r) {
      for (int half = 0; half < 2; ++half) {
        const float* block = tile.data() + r * kTile + half * 16;
        float want[16];
        bfp_decode_block(bfp_encode_block(block, bits), bits, want);
        for (int i = 0; i < 16; ++i) ASSERT_EQ(back[r * kTile + half * 16 + i], want[i]);
      }
    }
    // Exponent bytes come first, face 0 rows 0-15 then face 1 (columns 16-31).
    EXPECT_EQ(packed[16], bfp_encode_block(tile.data() + 16, bits).shared_exponent);
  }
}

}  // namespace
}  // namespace bringup
