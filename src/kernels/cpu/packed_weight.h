// The CPU layout of a weight. Output features are taken 16 at a time ("groups"), which is exactly
// a bfloat8_b block on the device (16 output channels at one input index) and one AVX-512 vector
// of fp32 accumulators. A group never straddles two stacked parts (q/k/v, gate/up), so each part
// keeps the block grouping it has on the device; a part whose size is not a multiple of 16 ends
// in a partly used group.
//
//   fp32             values [groups][K][16] float
//   bf16             values [groups][Kp/2][16][2] bf16, Kp = K rounded up to even: a pair of
//                    inputs per output lane, the operand order of vdpbf16ps
//   bfloat8_b/4_b    values [groups][K][16] int8 (two's complement code), exps [groups][K] uint8
//                    (shared exponent); value = code * 2^(exp - bfp_exponent_bias)
//   Q8_0             values [groups][K][16] int8 code, scales [groups][K/32][16] fp16 d;
//                    value = d * code, exactly ggml's (the file's bytes, regrouped)
//   Q4_K             values [groups][K/2][16] uint8, input 2i in the low nibble and 2i+1 in the
//                    high one; scales [groups][K/256][2][16] fp16 (d, then dmin, per lane);
//                    subscales [groups][K/32][2][16] uint8 (6-bit scale, then min, per lane);
//                    value = (d * scale) * code - dmin * min, exactly ggml's
//   Q6_K             values [groups][K][16] int8 code (-32..31), scales [groups][K/256][16] fp16 d,
//                    subscales [groups][K/16][16] int8 scale; value = (d * scale) * code, exactly
//                    ggml's (codes a byte each: 1.07 bytes a weight against the file's 0.82)
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/host_matrix.h"

namespace bringup {
class ThreadPool;
}

namespace bringup::cpu {

constexpr int64_t kGroup = 16;
constexpr int64_t kQ8Block = 32;      // inputs per Q8_0 block, and per Q4_K sub-block
constexpr int64_t kQ4KBlock = 256;    // inputs per Q4_K (and Q6_K) super-block
constexpr int64_t kQ6KSubBlock = 16;  // inputs per Q6_K sub-block

struct PackedWeight {
  WeightFormat format = WeightFormat::kF32;
  int64_t k = 0;               // input features
  int64_t k_pad = 0;           // K rounded up to even (bf16 pairs)
  int64_t groups = 0;          // groups of 16 output features
  std::vector<int64_t> col0;   // first output column of each group
  std::vector<int32_t> count;  // output columns each group holds (1..16)
  AlignedBuffer values;
  AlignedBuffer exps;
  AlignedBuffer scales;     // ggml formats: fp16 block scales
  AlignedBuffer subscales;  // Q4_K: 6-bit sub-block scales and mins

  const float* f32_group(int64_t g) const { return values.as<float>() + g * k * kGroup; }
  const uint16_t* bf16_group(int64_t g) const { return values.as<uint16_t>() + g * k_pad * kGroup; }
  const int8_t* code_group(int64_t g) const { return values.as<int8_t>() + g * k * kGroup; }
  const uint8_t* exp_group(int64_t g) const { return exps.as<uint8_t>() + g * k; }
  int exponent_bias() const;
  const uint16_t* q8_0_scales(int64_t g) const {
    return scales.as<uint16_t>() + g * (k / kQ8Block) * kGroup;
  }
  const uint8_t* q4_k_codes(int64_t g) const { return values.as<uint8_t>() + g * (k / 2) * kGroup; }
  const uint16_t* q4_k_scales(int64_t g) const {
    return scales.as<uint16_t>() + g * (k / kQ4KBlock) * 2 * kGroup;
  }
  const uint8_t* q4_k_subscales(int64_t g) const {
    return subscales.as<uint8_t>() + g * (k / kQ8Block) * 2 * kGroup;
  }
  const uint16_t* q6_k_scales(int64_t g) const {
    return scales.as<uint16_t>() + g * (k / kQ4KBlock) * kGroup;
  }
  const int8_t* q6_k_subscales(int64_t g) const {
    return subscales.as<int8_t>() + g * (k / kQ6KSubBlock) * kGroup;
  }
};

struct PackedSize {
  size_t values, exps, scales, subscales;
  size_t total() const { return values + exps + scales + subscales; }
};
PackedSize packed_size(WeightFormat format, int64_t groups, int64_t k);
// Bytes of a weight stacked from parts of part_rows output features each, k inputs.
size_t packed_bytes(WeightFormat format, std::span<const int64_t> part_rows, int64_t k);

// Converts host matrices (stacked along the output dimension) into `format`, in parallel. Rows
// already in a ggml format's type are taken code for code; other rows are quantized as ggml's
// reference quantizer does. Throws Error when K is not whole blocks of a ggml format.
PackedWeight pack_weight(ThreadPool& pool, std::span<const HostMatrix> parts, WeightFormat format);
// Output row `row` (a column of the layout) decoded to fp32: the embedding lookup.
void unpack_row(const PackedWeight& w, int64_t row, float* out);

}  // namespace bringup::cpu
