// Checkpoint dtypes to fp32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "bringup/checkpoint.h"
#include "core/dtype.h"

namespace bringup {

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

}  // namespace bringup
