// Load-time conversions into the packed layouts, written with Highway and dispatched to the best
// SIMD target at run time: what makes the first load of a block-float policy fast.
#pragma once

#include <cstdint>

namespace bringup::cpu {

// Encodes `blocks` blocks of 16 fp32 values (values[b * 16 + i]) as bfloat8_b / bfloat4_b
// (mantissa_bits 7 or 3): exps[b] the shared exponent, codes[b * 16 + i] the signed magnitude as a
// two's complement integer. Bit for bit what bfp_encode_block and bfp_code_to_int give.
void encode_bfp_blocks(const float* values, int64_t blocks, int mantissa_bits, int8_t* codes,
                       uint8_t* exps);

}  // namespace bringup::cpu
