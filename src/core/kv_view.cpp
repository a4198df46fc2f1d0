// The KV cache's row formats, the reference way: what fill_cache and paged_update_cache store and
// what the attention kernels must read back.
#include "core/kv_view.h"

#include <algorithm>
#include <cstring>

#include "core/dtype.h"

namespace bringup {

int64_t cache_row_bytes(CacheDType dtype, int64_t head_dim) {
  switch (dtype) {
    case CacheDType::kF32:
      return 4 * head_dim;
    case CacheDType::kBf16:
      return 2 * head_dim;
    case CacheDType::kBfp8:
      return (head_dim + kBfpBlock - 1) / kBfpBlock + head_dim;
  }
  return 0;
}

std::string_view cache_dtype_name(CacheDType dtype) {
  switch (dtype) {
    case CacheDType::kF32:
      return "fp32";
    case CacheDType::kBf16:
      return "bf16";
    case CacheDType::kBfp8:
      return "bfp8";
  }
  return "?";
}

void store_cache_row(CacheDType dtype, const float* x, int64_t hd, void* row) {
  switch (dtype) {
    case CacheDType::kF32:
      std::memcpy(row, x, static_cast<size_t>(hd) * sizeof(float));
      return;
    case CacheDType::kBf16: {
      uint16_t* out = static_cast<uint16_t*>(row);
      for (int64_t i = 0; i < hd; ++i) out[i] = f32_to_bf16(x[i]);
      return;
    }
    case CacheDType::kBfp8: {
      uint8_t* exps = static_cast<uint8_t*>(row);
      uint8_t* codes = exps + (hd + kBfpBlock - 1) / kBfpBlock;
      for (int64_t b = 0; b * kBfpBlock < hd; ++b) {
        const int64_t n = std::min<int64_t>(kBfpBlock, hd - b * kBfpBlock);
        float block[kBfpBlock] = {};  // a short last block is padded with zeros
        std::copy_n(x + b * kBfpBlock, n, block);
        const BfpBlock e = bfp_encode_block(block, kBfp8MantissaBits);
        exps[b] = e.shared_exponent;
        std::copy_n(e.codes, n, codes + b * kBfpBlock);
      }
      return;
    }
  }
}

void load_cache_row(CacheDType dtype, const void* row, int64_t hd, float* x) {
  switch (dtype) {
    case CacheDType::kF32:
      std::memcpy(x, row, static_cast<size_t>(hd) * sizeof(float));
      return;
    case CacheDType::kBf16: {
      const uint16_t* in = static_cast<const uint16_t*>(row);
      for (int64_t i = 0; i < hd; ++i) x[i] = bf16_to_f32(in[i]);
      return;
    }
    case CacheDType::kBfp8: {
      const uint8_t* exps = static_cast<const uint8_t*>(row);
      const uint8_t* codes = exps + (hd + kBfpBlock - 1) / kBfpBlock;
      for (int64_t b = 0; b * kBfpBlock < hd; ++b) {
        BfpBlock e{};
        e.shared_exponent = exps[b];
        const int64_t n = std::min<int64_t>(kBfpBlock, hd - b * kBfpBlock);
        std::copy_n(codes + b * kBfpBlock, n, e.codes);
        float block[kBfpBlock];
        bfp_decode_block(e, kBfp8MantissaBits, block);
        std::copy_n(block, n, x + b * kBfpBlock);
      }
      return;
    }
  }
}

}  // namespace bringup
