// A dense fp32 tensor in host memory: the activations that flow between ops. Storage grows but
// never shrinks, so a tensor sized once for the largest chunk is reused by every forward pass.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"

namespace bringup {

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::vector<int64_t> shape) { resize(std::move(shape)); }

  void resize(std::vector<int64_t> shape);
  const std::vector<int64_t>& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[i < 0 ? shape_.size() + i : i]; }
  int64_t numel() const { return numel_; }
  std::string shape_string() const;

  float* data() { return storage_.as<float>(); }
  const float* data() const { return storage_.as<float>(); }
  float* row(int64_t r) { return data() + r * dim(-1); }
  const float* row(int64_t r) const { return data() + r * dim(-1); }

 private:
  std::vector<int64_t> shape_;
  int64_t numel_ = 0;
  AlignedBuffer storage_;
};

}  // namespace bringup
