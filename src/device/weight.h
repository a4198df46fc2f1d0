// Weights as a device holds them: converted once at load, from Hugging Face [out, in] matrices,
// into the number format of the precision policy and the layout the device's kernels read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "core/host_matrix.h"

namespace bringup {

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

// A weight as the packed-weight cache stores it: its layout as small integers (the device's own
// description, given back to Device::adopt_weight) and the buffers that hold its bytes.
struct WeightImage {
  std::vector<int64_t> layout;
  std::vector<std::span<const std::byte>> buffers;
};

}  // namespace bringup
