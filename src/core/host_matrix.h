// Weights on the host, before a device takes them: the formats a device can store a weight in,
// and a matrix in Hugging Face orientation, held either as rows in a checkpoint dtype (or fp32)
// or already quantized to a block-float format as tt-metal tiles, which a device takes code for
// code instead of re-encoding fp32 rows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

#include "bringup/checkpoint.h"
#include "core/dtype.h"
#include "core/ggml_quants.h"

namespace bringup {

// kQ8_0, kQ4_K and kQ6_K are ggml's block types (GGUF files), kept code for code on the device.
enum class WeightFormat { kF32, kBf16, kBfp8, kBfp4, kQ8_0, kQ4_K, kQ6_K };
std::string_view weight_format_name(WeightFormat f);
// The ggml storage type of a ggml weight format (kQ8_0 -> Q8_0, ...); nullopt otherwise.
std::optional<StorageDType> ggml_type_of(WeightFormat f);

// n elements of dtype at src (any alignment) to fp32; exact for F32, BF16 and F16, and for the
// block types (n a multiple of the block) bit-identical to ggml's dequantization.
inline void convert_to_f32(StorageDType dtype, const std::byte* src, int64_t n, float* out) {
  switch (dtype) {
    case StorageDType::kF32:
      std::memcpy(out, src, static_cast<size_t>(n) * 4);
      return;
    case StorageDType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        out[i] = bf16_to_f32(h);
      }
      return;
    case StorageDType::kF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        out[i] = f16_to_f32(h);
      }
      return;
    default:
      dequantize_ggml(dtype, src, n, out);
      return;
  }
}

// A matrix on the host in Hugging Face orientation: rows = output features, cols = input
// features. Held as
//   rows       row-major values in a checkpoint dtype;
//   bfp tiles  bfloat8_b / bfloat4_b as tt-metal stores a linear weight: the matrix transposed
//              to [cols, rows] (input index, output channel), zero-padded to multiples of 32, in
//              32x32 tiles (bfp_pack_tile) ordered row-major; a block is 16 output channels at
//              one input index.
struct HostMatrix {
  StorageDType dtype = StorageDType::kF32;  // for rows
  const std::byte* data = nullptr;
  int64_t rows = 0, cols = 0;
  WeightFormat tiles = WeightFormat::kF32;  // kBfp8 / kBfp4 for bfp tiles; kF32: rows

  static HostMatrix of(const TensorView& t);  // 1-D tensors become one row
  static HostMatrix of(const float* data, int64_t rows, int64_t cols);
  // Checks that `bytes` holds exactly the tiles of a rows x cols matrix in `format`.
  static HostMatrix bfp_tiles(WeightFormat format, const std::byte* data, size_t bytes,
                              int64_t rows, int64_t cols);
  static size_t bfp_tiles_bytes(WeightFormat format, int64_t rows, int64_t cols);

  bool is_bfp_tiles() const { return tiles == WeightFormat::kBfp8 || tiles == WeightFormat::kBfp4; }
  void row(int64_t r, float* out) const;  // cols values converted (or decoded) to fp32
  // bfp tiles: the block holding output channels [first, first + 16) at input `input`
  // (first a multiple of 16).
  BfpBlock bfp_block(int64_t first, int64_t input) const;
};

// A matrix encoded as bfp tiles, as tt-metal's host converter does (round to nearest even within
// each block's shared exponent).
std::vector<std::byte> encode_bfp_tiles(const HostMatrix& m, WeightFormat format);

}  // namespace bringup
