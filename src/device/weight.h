// Weights as a device holds them: converted once at load, from Hugging Face [out, in] matrices,
// into the number format of the precision policy and the layout the device's kernels read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "bringup/checkpoint.h"

namespace bringup {

enum class WeightFormat { kF32, kBf16, kBfp8, kBfp4 };
std::string_view weight_format_name(WeightFormat f);

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

// Backend-specific storage behind a Weight.
class WeightStorage {
 public:
  virtual ~WeightStorage() = default;
};

// One linear weight (or several stacked along the output dimension, such as q/k/v or gate/up,
// each part keeping its own block-float grouping as on the device).
struct Weight {
  WeightFormat format = WeightFormat::kF32;
  int64_t rows = 0;  // output features, all parts together
  int64_t cols = 0;  // input features
  size_t bytes = 0;  // device memory it occupies
  std::unique_ptr<WeightStorage> storage;
};

}  // namespace bringup
