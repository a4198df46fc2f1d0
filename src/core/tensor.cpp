#include "core/tensor.h"

#include <cstring>

#include "bringup/error.h"

namespace bringup {

void Tensor::resize(std::vector<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error("tensor shape has a negative dimension");
    n *= d;
  }
  shape_ = std::move(shape);
  numel_ = n;
  const size_t bytes = static_cast<size_t>(n) * sizeof(float);
  if (bytes > storage_.bytes()) storage_ = AlignedBuffer(bytes);
}

std::string Tensor::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape_.size(); ++i) s += (i ? ", " : "") + std::to_string(shape_[i]);
  return s + "]";
}

}  // namespace bringup
