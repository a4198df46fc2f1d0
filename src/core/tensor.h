// A dense fp32 tensor: the activations that flow between ops. Two kinds of storage:
//   * a host tensor (default-constructed) owns host memory that grows but never shrinks, so one
//     sized for the largest chunk is reused by every call (tests, eval, host-side code);
//   * a device tensor (Tensor::on) lives in a device allocation of fixed capacity, sized once
//     from the largest shape it will take; a resize past it is an Error, never a reallocation.
// Ops read and write either kind through the device; only a backend dereferences data().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/device_memory.h"

namespace bringup {

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::vector<int64_t> shape) { resize(std::move(shape)); }
  // A tensor in `memory` (shape [0] until resized); `name` appears in capacity errors.
  static Tensor on(DeviceMemory memory, std::string name);

  void resize(std::vector<int64_t> shape);
  const std::vector<int64_t>& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[i < 0 ? shape_.size() + i : i]; }
  int64_t numel() const { return numel_; }
  std::string shape_string() const;
  bool on_device() const { return device_.data() != nullptr; }
  size_t capacity_bytes() const { return capacity_; }

  float* data() { return data_; }
  const float* data() const { return data_; }
  float* row(int64_t r) { return data() + r * dim(-1); }
  const float* row(int64_t r) const { return data() + r * dim(-1); }

 private:
  std::vector<int64_t> shape_;
  int64_t numel_ = 0;
  float* data_ = nullptr;
  size_t capacity_ = 0;
  AlignedBuffer host_;   // host tensors
  DeviceMemory device_;  // device tensors
  std::string name_;
};

}  // namespace bringup
