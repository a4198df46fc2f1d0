#include "core/host_matrix.h"

#include "bringup/error.h"

namespace bringup {

std::string_view weight_format_name(WeightFormat f) {
  switch (f) {
    case WeightFormat::kF32:
      return "fp32";
    case WeightFormat::kBf16:
      return "bf16";
    case WeightFormat::kBfp8:
      return "bfloat8_b";
    case WeightFormat::kBfp4:
      return "bfloat4_b";
  }
  return "?";
}

HostMatrix HostMatrix::of(const TensorView& t) {
  HostMatrix m;
  m.dtype = t.dtype;
  m.data = t.data;
  if (t.shape.size() == 2) {
    m.rows = t.shape[0];
    m.cols = t.shape[1];
  } else if (t.shape.size() == 1) {
    m.rows = 1;
    m.cols = t.shape[0];
  } else {
    throw Error(t.file + ": tensor '" + t.name + "' must be 1-D or 2-D");
  }
  return m;
}

HostMatrix HostMatrix::of(const float* data, int64_t rows, int64_t cols) {
  return HostMatrix{StorageDType::kF32, reinterpret_cast<const std::byte*>(data), rows, cols};
}

void HostMatrix::row(int64_t r, float* out) const {
  const int64_t elem = dtype == StorageDType::kF32 ? 4 : 2;  // F32, or BF16 / F16
  convert_to_f32(dtype, data + r * cols * elem, cols, out);
}

}  // namespace bringup
