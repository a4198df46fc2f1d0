#include <algorithm>
#include <cmath>
#include <span>

#include "bringup/error.h"
#include "core/dtype.h"
#include "core/thread_pool.h"
#include "kernels/cpu/packed_weight.h"

namespace bringup::cpu {

int PackedWeight::exponent_bias() const {
  return bfp_exponent_bias(format == WeightFormat::kBfp8 ? kBfp8MantissaBits : kBfp4MantissaBits);
}

namespace {

struct GroupSource {
  const HostMatrix* part;
  int64_t first_row;
};

// Group g of a matrix already in the weight's block-float format: its codes as they are, each
// block of the tiles being exactly one group at one input index.
void copy_bfp_group(PackedWeight& w, const GroupSource& src, int64_t g) {
  const int bits = w.format == WeightFormat::kBfp8 ? kBfp8MantissaBits : kBfp4MantissaBits;
  int8_t* codes = w.values.as<int8_t>() + g * w.k * kGroup;
  uint8_t* exps = w.exps.as<uint8_t>() + g * w.k;
  for (int64_t i = 0; i < w.k; ++i) {
    const BfpBlock b = src.part->bfp_block(src.first_row, i);
    exps[i] = b.shared_exponent;
    for (int64_t lane = 0; lane < kGroup; ++lane) {
      codes[i * kGroup + lane] = bfp_code_to_int(b.codes[lane], bits);
    }
  }
}

// Writes group g: its 16 rows of the host matrix (missing rows are zero) in the packed layout.
void pack_group(PackedWeight& w, const GroupSource& src, int64_t g, std::vector<float>& rows) {
  if (src.part->is_bfp_tiles() && src.part->tiles == w.format) {
    copy_bfp_group(w, src, g);
    return;
  }
  const int64_t k = w.k;
  rows.assign(kGroup * k, 0.0f);
  for (int32_t lane = 0; lane < w.count[g]; ++lane) {
    src.part->row(src.first_row + lane, rows.data() + lane * k);
  }
  switch (w.format) {
    case WeightFormat::kF32: {
      float* dst = w.values.as<float>() + g * k * kGroup;
      for (int64_t i = 0; i < k; ++i) {
        for (int64_t lane = 0; lane < kGroup; ++lane) dst[i * kGroup + lane] = rows[lane * k + i];
      }
      break;
    }
    case WeightFormat::kBf16: {
      uint16_t* dst = w.values.as<uint16_t>() + g * w.k_pad * kGroup;
      for (int64_t i = 0; i < w.k_pad; ++i) {
        for (int64_t lane = 0; lane < kGroup; ++lane) {
          const float v = i < k ? rows[lane * k + i] : 0.0f;
          dst[(i / 2) * 2 * kGroup + lane * 2 + (i % 2)] = f32_to_bf16(v);
        }
      }
      break;
    }
    case WeightFormat::kBfp8:
    case WeightFormat::kBfp4: {
      const int bits = w.format == WeightFormat::kBfp8 ? kBfp8MantissaBits : kBfp4MantissaBits;
      int8_t* codes = w.values.as<int8_t>() + g * k * kGroup;
      uint8_t* exps = w.exps.as<uint8_t>() + g * k;
      float block[kGroup];
      for (int64_t i = 0; i < k; ++i) {
        for (int64_t lane = 0; lane < kGroup; ++lane) block[lane] = rows[lane * k + i];
        const BfpBlock b = bfp_encode_block(block, bits);
        exps[i] = b.shared_exponent;
        for (int64_t lane = 0; lane < kGroup; ++lane) {
          codes[i * kGroup + lane] = bfp_code_to_int(b.codes[lane], bits);
        }
      }
      break;
    }
  }
}

}  // namespace

PackedSize packed_size(WeightFormat format, int64_t groups, int64_t k) {
  const size_t cells = static_cast<size_t>(groups * kGroup);
  switch (format) {
    case WeightFormat::kF32:
      return {cells * static_cast<size_t>(k) * sizeof(float), 0};
    case WeightFormat::kBf16:
      return {cells * static_cast<size_t>((k + 1) / 2 * 2) * 2, 0};
    case WeightFormat::kBfp8:
    case WeightFormat::kBfp4:
      return {cells * static_cast<size_t>(k), static_cast<size_t>(groups * k)};
  }
  return {};
}

size_t packed_bytes(WeightFormat format, std::span<const int64_t> part_rows, int64_t k) {
  int64_t groups = 0;
  for (int64_t rows : part_rows) groups += (rows + kGroup - 1) / kGroup;
  const PackedSize s = packed_size(format, groups, k);
  return s.values + s.exps;
}

PackedWeight pack_weight(ThreadPool& pool, std::span<const HostMatrix> parts, WeightFormat format) {
  PackedWeight w;
  w.format = format;
  if (parts.empty()) throw Error("pack_weight: no matrices given");
  w.k = parts[0].cols;
  w.k_pad = (w.k + 1) / 2 * 2;
  std::vector<GroupSource> sources;
  int64_t col = 0;
  for (const HostMatrix& p : parts) {
    if (p.cols != w.k) throw Error("pack_weight: stacked matrices differ in input features");
    for (int64_t r = 0; r < p.rows; r += kGroup) {
      sources.push_back({&p, r});
      w.col0.push_back(col + r);
      w.count.push_back(static_cast<int32_t>(std::min(kGroup, p.rows - r)));
    }
    col += p.rows;
  }
  w.groups = static_cast<int64_t>(sources.size());
  const PackedSize size = packed_size(format, w.groups, w.k);
  w.values = AlignedBuffer(size.values, AlignedBuffer::Pages::kHuge);
  w.exps = AlignedBuffer(size.exps, AlignedBuffer::Pages::kHuge);
  std::vector<std::vector<float>> scratch(pool.size());
  pool.parallel_for(w.groups,
                    [&](int64_t g, int thread) { pack_group(w, sources[g], g, scratch[thread]); });
  return w;
}

void unpack_row(const PackedWeight& w, int64_t row, float* out) {
  const auto it = std::upper_bound(w.col0.begin(), w.col0.end(), row);
  const int64_t g = (it - w.col0.begin()) - 1;
  const int64_t lane = row - w.col0[g];
  switch (w.format) {
    case WeightFormat::kF32: {
      const float* src = w.f32_group(g);
      for (int64_t i = 0; i < w.k; ++i) out[i] = src[i * kGroup + lane];
      break;
    }
    case WeightFormat::kBf16: {
      const uint16_t* src = w.bf16_group(g);
      for (int64_t i = 0; i < w.k; ++i) {
        out[i] = bf16_to_f32(src[(i / 2) * 2 * kGroup + lane * 2 + (i % 2)]);
      }
      break;
    }
    case WeightFormat::kBfp8:
    case WeightFormat::kBfp4: {
      const int8_t* codes = w.code_group(g);
      const uint8_t* exps = w.exp_group(g);
      const int bias = w.exponent_bias();
      for (int64_t i = 0; i < w.k; ++i) {
        out[i] = std::ldexp(static_cast<float>(codes[i * kGroup + lane]), exps[i] - bias);
      }
      break;
    }
  }
}

}  // namespace bringup::cpu
