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

// n fp32 values (a multiple of 32) to Q8_0 blocks at out, as ggml's quantize_row_q8_0_ref does
// (scale = max |x| / 127 in fp16, codes rounded half away from zero).
void quantize_q8_0(const float* x, int64_t n, std::byte* out);

}  // namespace bringup
