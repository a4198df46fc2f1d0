// Weights on the host, before a device takes them: the formats a device can store a weight in,
// and a matrix of a checkpoint (or of fp32 values) in Hugging Face orientation with its
// conversion to fp32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "bringup/checkpoint.h"
#include "core/dtype.h"

namespace bringup {

enum class WeightFormat { kF32, kBf16, kBfp8, kBfp4 };
std::string_view weight_format_name(WeightFormat f);

// n elements of dtype at src (any alignment) to fp32; exact for F32, BF16 and F16.
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
  }
}

// A matrix on the host in Hugging Face orientation: rows = output features, cols = input
// features, row-major, in a checkpoint dtype.
struct HostMatrix {
  StorageDType dtype = StorageDType::kF32;
  const std::byte* data = nullptr;
  int64_t rows = 0, cols = 0;

  static HostMatrix of(const TensorView& t);  // 1-D tensors become one row
  static HostMatrix of(const float* data, int64_t rows, int64_t cols);
  void row(int64_t r, float* out) const;  // cols values converted to fp32
};

}  // namespace bringup
