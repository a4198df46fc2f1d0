#include "core/tensor.h"

#include "bringup/error.h"

namespace bringup {

Tensor Tensor::on(DeviceMemory memory, std::string name) {
  Tensor t;
  t.data_ = static_cast<float*>(memory.data());
  t.capacity_ = memory.bytes();
  t.device_ = std::move(memory);
  t.name_ = std::move(name);
  t.shape_ = {0};
  return t;
}

void Tensor::resize(std::vector<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error("tensor shape has a negative dimension");
    n *= d;
  }
  const size_t bytes = static_cast<size_t>(n) * sizeof(float);
  if (bytes > capacity_) {
    if (on_device()) {
      throw Error("device tensor '" + name_ + "' holds " + std::to_string(capacity_) +
                  " bytes, too few for " + std::to_string(n) + " elements");
    }
    host_ = AlignedBuffer(bytes);
    data_ = host_.as<float>();
    capacity_ = bytes;
  }
  shape_ = std::move(shape);
  numel_ = n;
}

std::string Tensor::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape_.size(); ++i) s += (i ? ", " : "") + std::to_string(shape_[i]);
  return s + "]";
}

}  // namespace bringup
