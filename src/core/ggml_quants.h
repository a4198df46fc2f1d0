// ggml's block quantizations as GGUF files store them (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 in blocks
// of 32; Q4_K, Q5_K, Q6_K in super-blocks of 256), decoded to fp32 exactly as ggml's reference
// dequantize_row_* functions do: the same products in the same order, so every value is
// bit-identical (tests/data/gguf holds vectors made by gguf-py, an independent implementation).
#pragma once

#include <cstddef>
#include <cstdint>

#include "bringup/checkpoint.h"

namespace bringup {

// n elements (a multiple of the type's block) of a block-quantized type at src to fp32.
void dequantize_ggml(StorageDType type, const std::byte* src, int64_t n, float* out);

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K super-block's twelve scale bytes.
void q4_k_scale_min(int j, const uint8_t* scales, uint8_t& scale, uint8_t& min);

// Whether quantize_ggml writes `type`: Q8_0, Q5_0, Q4_K and Q6_K (ggml_quantize.cpp).
bool can_quantize_ggml(StorageDType type);
// n fp32 values (whole blocks of the type) to its blocks at out, by the algorithm of ggml's
// quantize_row_*_ref (Q8_0: scale max |x| / 127, codes rounded half away from zero; Q4_K and
// Q6_K: ggml's searches for each sub-block's scale). Throws Error for other types.
void quantize_ggml(StorageDType type, const float* x, int64_t n, std::byte* out);

}  // namespace bringup
