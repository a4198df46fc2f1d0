#include "core/host_matrix.h"

#include <string>

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
    case WeightFormat::kQ8_0:
      return "Q8_0";
    case WeightFormat::kQ4_K:
      return "Q4_K";
    case WeightFormat::kQ6_K:
      return "Q6_K";
  }
  return "?";
}

std::optional<StorageDType> ggml_type_of(WeightFormat f) {
  if (f == WeightFormat::kQ8_0) return StorageDType::kQ8_0;
  if (f == WeightFormat::kQ4_K) return StorageDType::kQ4_K;
  if (f == WeightFormat::kQ6_K) return StorageDType::kQ6_K;
  return std::nullopt;
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
  if (m.cols % storage_block_elems(t.dtype) != 0) {
    throw Error(t.file + ": tensor '" + t.name + "' has rows of " + std::to_string(m.cols) +
                " elements, not whole " + std::string(storage_dtype_name(t.dtype)) + " blocks");
  }
  return m;
}

HostMatrix HostMatrix::of(const float* data, int64_t rows, int64_t cols) {
  return HostMatrix{StorageDType::kF32, reinterpret_cast<const std::byte*>(data), rows, cols};
}

namespace {

int mantissa_bits(WeightFormat f) {
  return f == WeightFormat::kBfp8 ? kBfp8MantissaBits : kBfp4MantissaBits;
}
int64_t tiles_along(int64_t n) {
  return (n + kTile - 1) / kTile;
}

}  // namespace

size_t HostMatrix::bfp_tiles_bytes(WeightFormat format, int64_t rows, int64_t cols) {
  return static_cast<size_t>(tiles_along(rows) * tiles_along(cols)) *
         static_cast<size_t>(bfp_tile_bytes(mantissa_bits(format)));
}

HostMatrix HostMatrix::bfp_tiles(WeightFormat format, const std::byte* data, size_t bytes,
                                 int64_t rows, int64_t cols) {
  if (format != WeightFormat::kBfp8 && format != WeightFormat::kBfp4) {
    throw Error("bfp tiles must be bfloat8_b or bfloat4_b, not " +
                std::string(weight_format_name(format)));
  }
  if (rows < 1 || cols < 1) throw Error("a bfp tile matrix needs positive dimensions");
  const size_t want = bfp_tiles_bytes(format, rows, cols);
  if (bytes != want) {
    throw Error(std::string(weight_format_name(format)) + " tiles of a " + std::to_string(rows) +
                " x " + std::to_string(cols) + " matrix take " + std::to_string(want) +
                " bytes, not " + std::to_string(bytes));
  }
  HostMatrix m;
  m.data = data;
  m.rows = rows;
  m.cols = cols;
  m.tiles = format;
  return m;
}

BfpBlock HostMatrix::bfp_block(int64_t first, int64_t input) const {
  const int w = mantissa_bits(tiles);
  const int64_t tile = (input / kTile) * tiles_along(rows) + first / kTile;
  const auto* t = reinterpret_cast<const uint8_t*>(data) + tile * bfp_tile_bytes(w);
  const int face = static_cast<int>((input % kTile) / 16 * 2 + (first % kTile) / 16);
  return bfp_tile_block(t, w, face, static_cast<int>(input % 16));
}

void HostMatrix::row(int64_t r, float* out) const {
  if (is_bfp_tiles()) {
    const int w = mantissa_bits(tiles);
    float block[kBfpBlock];
    for (int64_t i = 0; i < cols; ++i) {
      bfp_decode_block(bfp_block(r / 16 * 16, i), w, block);
      out[i] = block[r % 16];
    }
    return;
  }
  convert_to_f32(dtype, data + storage_bytes(dtype, r * cols), cols, out);
}

std::vector<std::byte> encode_bfp_tiles(const HostMatrix& m, WeightFormat format) {
  const int w = mantissa_bits(format);
  const int64_t tr = tiles_along(m.cols), tc = tiles_along(m.rows);
  std::vector<std::byte> out(HostMatrix::bfp_tiles_bytes(format, m.rows, m.cols));
  std::vector<float> row(static_cast<size_t>(m.cols));
  std::vector<float> transposed(static_cast<size_t>(tr * kTile * tc * kTile), 0.0f);
  for (int64_t r = 0; r < m.rows; ++r) {
    m.row(r, row.data());
    for (int64_t i = 0; i < m.cols; ++i) transposed[i * tc * kTile + r] = row[i];
  }
  float tile[kTile * kTile];
  for (int64_t a = 0; a < tr; ++a) {
    for (int64_t b = 0; b < tc; ++b) {
      for (int y = 0; y < kTile; ++y) {
        for (int x = 0; x < kTile; ++x) {
          tile[y * kTile + x] = transposed[(a * kTile + y) * tc * kTile + b * kTile + x];
        }
      }
      bfp_pack_tile(tile, w,
                    reinterpret_cast<uint8_t*>(out.data()) + (a * tc + b) * bfp_tile_bytes(w));
    }
  }
  return out;
}

}  // namespace bringup
