// Packing host matrices into the CPU layout of packed_weight.h, and decoding one row back.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <span>
#include <string>

#include "bringup/error.h"
#include "core/dtype.h"
#include "core/ggml_quants.h"
#include "core/thread_pool.h"
#include "kernels/cpu/convert.h"
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

// One output row of Q8_0 blocks (ggml's bytes: fp16 d, 32 int8 codes) into lane `lane` of g.
void put_q8_0_row(PackedWeight& w, int64_t g, int64_t lane, const uint8_t* row) {
  int8_t* codes = w.values.as<int8_t>() + g * w.k * kGroup;
  uint16_t* scales = w.scales.as<uint16_t>() + g * (w.k / kQ8Block) * kGroup;
  const size_t block_bytes = storage_block_bytes(StorageDType::kQ8_0);
  for (int64_t b = 0; b < w.k / kQ8Block; ++b) {
    const uint8_t* blk = row + b * block_bytes;
    std::memcpy(&scales[b * kGroup + lane], blk, 2);
    for (int64_t j = 0; j < kQ8Block; ++j) {
      codes[(b * kQ8Block + j) * kGroup + lane] = static_cast<int8_t>(blk[2 + j]);
    }
  }
}

// One output row of Q4_K super-blocks (fp16 d and dmin, twelve bytes of 6-bit scales and mins,
// 128 bytes of codes: each 64 inputs are 32 bytes, the first 32 inputs in the low nibbles).
void put_q4_k_row(PackedWeight& w, int64_t g, int64_t lane, const uint8_t* row) {
  uint8_t* codes = w.values.as<uint8_t>() + g * (w.k / 2) * kGroup;
  uint16_t* scales = w.scales.as<uint16_t>() + g * (w.k / kQ4KBlock) * 2 * kGroup;
  uint8_t* subs = w.subscales.as<uint8_t>() + g * (w.k / kQ8Block) * 2 * kGroup;
  const size_t block_bytes = storage_block_bytes(StorageDType::kQ4_K);
  for (int64_t s = 0; s < w.k / kQ4KBlock; ++s) {
    const uint8_t* blk = row + s * block_bytes;
    std::memcpy(&scales[(2 * s) * kGroup + lane], blk, 2);
    std::memcpy(&scales[(2 * s + 1) * kGroup + lane], blk + 2, 2);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      q4_k_scale_min(j, blk + 4, sc, m);
      subs[(2 * (s * 8 + j)) * kGroup + lane] = sc;
      subs[(2 * (s * 8 + j) + 1) * kGroup + lane] = m;
    }
    for (int64_t i = 0; i < kQ4KBlock; ++i) {
      const int64_t within = i % 64;
      const uint8_t byte = blk[16 + (i / 64) * 32 + within % 32];
      const auto q = static_cast<uint8_t>(within < 32 ? byte & 0xF : byte >> 4);
      const int64_t k = s * kQ4KBlock + i;
      uint8_t& dst = codes[(k / 2) * kGroup + lane];
      dst = static_cast<uint8_t>(k % 2 == 0 ? (dst & 0xF0) | q : (dst & 0x0F) | (q << 4));
    }
  }
}

// One output row of Q6_K super-blocks (ql[128]: low four bits, qh[64]: high two, int8
// scales[16] of 16 inputs each, fp16 d); codes as ggml's dequantize_row_q6_K unpacks them.
void put_q6_k_row(PackedWeight& w, int64_t g, int64_t lane, const uint8_t* row) {
  int8_t* codes = w.values.as<int8_t>() + g * w.k * kGroup;
  uint16_t* scales = w.scales.as<uint16_t>() + g * (w.k / kQ4KBlock) * kGroup;
  int8_t* subs = w.subscales.as<int8_t>() + g * (w.k / kQ6KSubBlock) * kGroup;
  const size_t block_bytes = storage_block_bytes(StorageDType::kQ6_K);
  for (int64_t s = 0; s < w.k / kQ4KBlock; ++s) {
    const uint8_t* blk = row + s * block_bytes;
    std::memcpy(&scales[s * kGroup + lane], blk + 208, 2);
    for (int64_t j = 0; j < kQ4KBlock / kQ6KSubBlock; ++j) {
      subs[(s * 16 + j) * kGroup + lane] = static_cast<int8_t>(blk[192 + j]);
    }
    for (int64_t i = 0; i < kQ4KBlock; ++i) {
      // Input i is in half i / 128, quarter (i % 128) / 32, position l = i % 32 of that quarter.
      const int64_t half = i / 128, quarter = (i % 128) / 32, l = i % 32;
      const uint8_t* ql = blk + half * 64;
      const uint8_t* qh = blk + 128 + half * 32;
      // Quarters 0 and 2 share ql[l] (low, high nibble), 1 and 3 ql[l + 32]; qh[l] holds all four.
      const uint8_t byte = quarter % 2 == 0 ? ql[l] : ql[l + 32];
      const int nibble = quarter < 2 ? byte & 0xF : byte >> 4;
      const int high = (qh[l] >> (2 * quarter)) & 3;
      codes[(s * kQ4KBlock + i) * kGroup + lane] = static_cast<int8_t>((nibble | (high << 4)) - 32);
    }
  }
}

// Group g of a ggml format: each row's blocks as the checkpoint stores them when it stores this
// type, else the row quantized here; missing rows are zero (zero scales).
void pack_ggml_group(PackedWeight& w, const GroupSource& src, int64_t g, std::vector<float>& row,
                     std::vector<std::byte>& blocks) {
  const StorageDType type = *ggml_type_of(w.format);
  const PackedSize one = packed_size(w.format, 1, w.k);
  std::memset(w.values.as<std::byte>() + g * one.values, 0, one.values);
  std::memset(w.scales.as<std::byte>() + g * one.scales, 0, one.scales);
  if (one.subscales) std::memset(w.subscales.as<std::byte>() + g * one.subscales, 0, one.subscales);
  const HostMatrix& m = *src.part;
  const size_t row_bytes = storage_bytes(type, w.k);
  for (int32_t lane = 0; lane < w.count[g]; ++lane) {
    const int64_t r = src.first_row + lane;
    const uint8_t* bytes;
    if (!m.is_bfp_tiles() && m.dtype == type) {
      bytes = reinterpret_cast<const uint8_t*>(m.data) + r * row_bytes;
    } else {
      row.resize(static_cast<size_t>(w.k));
      blocks.resize(row_bytes);
      m.row(r, row.data());
      quantize_ggml(type, row.data(), w.k, blocks.data());
      bytes = reinterpret_cast<const uint8_t*>(blocks.data());
    }
    if (type == StorageDType::kQ8_0) {
      put_q8_0_row(w, g, lane, bytes);
    } else if (type == StorageDType::kQ4_K) {
      put_q4_k_row(w, g, lane, bytes);
    } else {
      put_q6_k_row(w, g, lane, bytes);
    }
  }
}

// Group g of a bf16 weight from bf16 rows: the values are already what the device holds, so each
// input pair of a row moves as one 32-bit word (little-endian: the even input in the low half, as
// the layout wants), with no trip through fp32. Before, this went through pack_group's general
// path and was most of the time a bf16 checkpoint took to convert.
void pack_bf16_rows(PackedWeight& w, const GroupSource& src, int64_t g) {
  const int64_t k = w.k, full = w.k / 2;  // pairs with both inputs in the row
  const int count = w.count[g];
  auto* dst = reinterpret_cast<uint32_t*>(w.values.as<uint16_t>() + g * w.k_pad * kGroup);
  if (count < kGroup || k % 2 != 0) {
    std::memset(dst, 0, static_cast<size_t>(w.k_pad * kGroup) * 2);  // missing rows, last pair
  }
  const std::byte* rows = src.part->data + src.first_row * k * 2;
  // 16 pairs (one 64-byte line of each row) at a time, so the scattered stores stay in one KiB.
  for (int64_t p0 = 0; p0 < full; p0 += 16) {
    const int64_t p1 = std::min(full, p0 + 16);
    for (int lane = 0; lane < count; ++lane) {
      const std::byte* row = rows + lane * k * 2;
      for (int64_t p = p0; p < p1; ++p) std::memcpy(&dst[p * kGroup + lane], row + 4 * p, 4);
    }
  }
  if (k % 2 != 0) {  // the last input, paired with zero
    for (int lane = 0; lane < count; ++lane) {
      std::memcpy(&dst[full * kGroup + lane], rows + (lane * k + k - 1) * 2, 2);
    }
  }
}

// Writes group g: its 16 rows of the host matrix (missing rows are zero) in the packed layout.
void pack_group(PackedWeight& w, const GroupSource& src, int64_t g, std::vector<float>& rows,
                std::vector<std::byte>& blocks) {
  if (src.part->is_bfp_tiles() && src.part->tiles == w.format) {
    copy_bfp_group(w, src, g);
    return;
  }
  if (ggml_type_of(w.format)) {
    pack_ggml_group(w, src, g, rows, blocks);
    return;
  }
  if (w.format == WeightFormat::kBf16 && !src.part->is_bfp_tiles() &&
      src.part->dtype == StorageDType::kBF16) {
    pack_bf16_rows(w, src, g);
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
      // Blocks of 16 lanes at each input, then all of them encoded at once.
      blocks.resize(static_cast<size_t>(k * kGroup) * sizeof(float));
      float* block = reinterpret_cast<float*>(blocks.data());
      for (int64_t i = 0; i < k; ++i) {
        for (int64_t lane = 0; lane < kGroup; ++lane) block[i * kGroup + lane] = rows[lane * k + i];
      }
      encode_bfp_blocks(block, k,
                        w.format == WeightFormat::kBfp8 ? kBfp8MantissaBits : kBfp4MantissaBits,
                        w.values.as<int8_t>() + g * k * kGroup, w.exps.as<uint8_t>() + g * k);
      break;
    }
    case WeightFormat::kQ8_0:
    case WeightFormat::kQ4_K:
    case WeightFormat::kQ6_K:
      break;  // pack_ggml_group
  }
}

}  // namespace

PackedSize packed_size(WeightFormat format, int64_t groups, int64_t k) {
  const size_t cells = static_cast<size_t>(groups * kGroup);
  switch (format) {
    case WeightFormat::kF32:
      return {cells * static_cast<size_t>(k) * sizeof(float), 0, 0, 0};
    case WeightFormat::kBf16:
      return {cells * static_cast<size_t>((k + 1) / 2 * 2) * 2, 0, 0, 0};
    case WeightFormat::kBfp8:
    case WeightFormat::kBfp4:
      return {cells * static_cast<size_t>(k), static_cast<size_t>(groups * k), 0, 0};
    case WeightFormat::kQ8_0:
      return {cells * static_cast<size_t>(k), 0, cells * static_cast<size_t>(k / kQ8Block) * 2, 0};
    case WeightFormat::kQ4_K:
      return {cells * static_cast<size_t>(k / 2), 0,
              cells * static_cast<size_t>(k / kQ4KBlock) * 2 * 2,
              cells * static_cast<size_t>(k / kQ8Block) * 2};
    case WeightFormat::kQ6_K:
      return {cells * static_cast<size_t>(k), 0, cells * static_cast<size_t>(k / kQ4KBlock) * 2,
              cells * static_cast<size_t>(k / kQ6KSubBlock)};
  }
  return {};
}

size_t packed_bytes(WeightFormat format, std::span<const int64_t> part_rows, int64_t k) {
  int64_t groups = 0;
  for (int64_t rows : part_rows) groups += (rows + kGroup - 1) / kGroup;
  return packed_size(format, groups, k).total();
}

PackedWeight pack_weight(ThreadPool& pool, std::span<const HostMatrix> parts, WeightFormat format) {
  PackedWeight w;
  w.format = format;
  if (parts.empty()) throw Error("pack_weight: no matrices given");
  w.k = parts[0].cols;
  if (const auto type = ggml_type_of(format)) {
    const int64_t block = storage_block_elems(*type);
    if (w.k % block != 0) {
      throw Error(std::string(weight_format_name(format)) + " weights need input features in " +
                  "whole blocks of " + std::to_string(block) + ", not " + std::to_string(w.k));
    }
  }
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
  w.scales = AlignedBuffer(size.scales, AlignedBuffer::Pages::kHuge);
  w.subscales = AlignedBuffer(size.subscales, AlignedBuffer::Pages::kHuge);
  std::vector<std::vector<float>> scratch(pool.size());
  std::vector<std::vector<std::byte>> blocks(pool.size());
  pool.parallel_for(w.groups, [&](int64_t g, int thread) {
    pack_group(w, sources[g], g, scratch[thread], blocks[thread]);
  });
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
    case WeightFormat::kQ8_0: {  // as ggml's dequantize_row_q8_0
      const int8_t* codes = w.code_group(g);
      const uint16_t* scales = w.q8_0_scales(g);
      for (int64_t i = 0; i < w.k; ++i) {
        const float d = f16_to_f32(scales[(i / kQ8Block) * kGroup + lane]);
        out[i] = static_cast<float>(codes[i * kGroup + lane]) * d;
      }
      break;
    }
    case WeightFormat::kQ4_K: {  // as ggml's dequantize_row_q4_K
      const uint8_t* codes = w.q4_k_codes(g);
      const uint16_t* scales = w.q4_k_scales(g);
      const uint8_t* subs = w.q4_k_subscales(g);
      for (int64_t i = 0; i < w.k; ++i) {
        const int64_t s = i / kQ4KBlock, j = i / kQ8Block;
        const float d = f16_to_f32(scales[2 * s * kGroup + lane]);
        const float dmin = f16_to_f32(scales[(2 * s + 1) * kGroup + lane]);
        const float d1 = d * subs[2 * j * kGroup + lane];
        const float m1 = dmin * subs[(2 * j + 1) * kGroup + lane];
        const uint8_t byte = codes[(i / 2) * kGroup + lane];
        out[i] = d1 * static_cast<float>(i % 2 == 0 ? byte & 0xF : byte >> 4) - m1;
      }
      break;
    }
    case WeightFormat::kQ6_K: {  // as ggml's dequantize_row_q6_K: (d * scale) * code
      const int8_t* codes = w.code_group(g);
      const uint16_t* scales = w.q6_k_scales(g);
      const int8_t* subs = w.q6_k_subscales(g);
      for (int64_t i = 0; i < w.k; ++i) {
        const float d = f16_to_f32(scales[(i / kQ4KBlock) * kGroup + lane]);
        out[i] = d * subs[(i / kQ6KSubBlock) * kGroup + lane] * codes[i * kGroup + lane];
      }
      break;
    }
  }
}

}  // namespace bringup::cpu
