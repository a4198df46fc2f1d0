// fp32 rows to ggml's block quantizations, by the algorithms of ggml's reference quantizers
// (quantize_row_*_ref in ggml-quants.c): Q8_0 and Q5_0 by the block's largest magnitude, Q4_K by
// a weighted least-squares search for each sub-block's scale and min, Q6_K by a search over
// scales around the largest magnitude. Any quantizer is valid if ggml decodes its bytes; these
// follow ggml's choices so that a file written here is as accurate as one llama-quantize writes
// without an importance matrix.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "bringup/error.h"
#include "core/dtype.h"
#include "core/ggml_quants.h"

namespace bringup {

namespace {

constexpr int kQK = 32;
constexpr int kQKK = 256;
constexpr float kGroupMaxEps = 1e-15f;  // ggml's "all zero" threshold

// Round half to even, as ggml's nearest_int does by adding 1.5 * 2^23.
int nearest(float v) {
  return static_cast<int>(std::nearbyint(v));
}

void put_half(uint8_t* p, float v) {
  const uint16_t h = f32_to_f16(v);
  std::memcpy(p, &h, 2);
}

void q8_0_block(const float* x, uint8_t* y) {
  float amax = 0.0f;
  for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / ((1 << 7) - 1);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half(y, d);
  for (int j = 0; j < kQK; ++j) {
    y[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::round(x[j] * id)));
  }
}

// Scale = the signed value of largest magnitude / -16, codes offset by 16 (5 bits: the low four
// in qs, the fifth in qh).
void q5_0_block(const float* x, uint8_t* y) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < kQK; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  const float d = max / -16;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  put_half(y, d);
  uint32_t qh = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    // ggml truncates toward zero after adding 16.5 (an int8 cast), then clamps to 31.
    const auto code = [&](float v) {
      return static_cast<uint8_t>(std::min(31, static_cast<int>(static_cast<int8_t>(v + 16.5f))));
    };
    const uint8_t c0 = code(x[j] * id), c1 = code(x[j + kQK / 2] * id);
    y[6 + j] = static_cast<uint8_t>((c0 & 0x0F) | ((c1 & 0x0F) << 4));
    qh |= static_cast<uint32_t>((c0 & 0x10u) >> 4) << j;
    qh |= static_cast<uint32_t>((c1 & 0x10u) >> 4) << (j + kQK / 2);
  }
  std::memcpy(y + 2, &qh, 4);
}

// Codes 0..nmax with x ~ scale * code - min, minimising sum w (scale * code - min - x)^2 over a
// range of trial scales (ggml's make_qkx2_quants with rmin -1, rdelta 0.1, 20 steps). Returns
// the scale; *neg_min receives min (>= 0).
float scale_min_search(const float* x, const float* w, int n, int nmax, uint8_t* codes,
                       float* neg_min) {
  float min = x[0], max = x[0], sum_w = w[0], sum_x = w[0] * x[0];
  for (int i = 1; i < n; ++i) {
    min = std::min(min, x[i]);
    max = std::max(max, x[i]);
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::fill(codes, codes + n, uint8_t{0});
    *neg_min = -min;
    return 0.0f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    codes[i] = static_cast<uint8_t>(std::clamp(nearest(iscale * (x[i] - min)), 0, nmax));
    const float diff = scale * codes[i] + min - x[i];
    best_error += w[i] * diff * diff;
  }
  uint8_t trial[kQK];
  for (int step = 0; step <= 20; ++step) {
    iscale = (-1.0f + 0.1f * step + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest(iscale * (x[i] - min)), 0, nmax);
      trial[i] = static_cast<uint8_t>(l);
      sum_l += w[i] * l;
      sum_l2 += w[i] * l * l;
      sum_xl += w[i] * l * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det <= 0) continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    if (this_min > 0) {
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    float error = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = this_scale * trial[i] + this_min - x[i];
      error += w[i] * diff * diff;
    }
    if (error < best_error) {
      std::copy(trial, trial + n, codes);
      best_error = error;
      scale = this_scale;
      min = this_min;
    }
  }
  *neg_min = -min;
  return scale;
}

// Eight sub-blocks of 32, each with a 6-bit scale and min relative to the super-block's fp16 d
// and dmin; 4-bit codes.
void q4_k_block(const float* x, uint8_t* y) {
  uint8_t codes[kQKK];
  float scales[8], mins[8], weights[kQK];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + kQK * j;
    float sum_x2 = 0;
    for (int l = 0; l < kQK; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / kQK);
    for (int l = 0; l < kQK; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] = scale_min_search(xs, weights, kQK, 15, codes + kQK * j, &mins[j]);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  uint8_t* sc = y + 4;  // scales[12]: 6-bit scale and min of each sub-block, packed
  std::memset(sc, 0, 12);
  uint8_t ls6[8], lm6[8];
  for (int j = 0; j < 8; ++j) {
    const uint8_t ls = static_cast<uint8_t>(std::min(63, nearest(inv_scale * scales[j]) & 0xFF));
    const uint8_t lm = static_cast<uint8_t>(std::min(63, nearest(inv_min * mins[j]) & 0xFF));
    ls6[j] = ls;
    lm6[j] = lm;
    if (j < 4) {
      sc[j] = static_cast<uint8_t>(sc[j] | ls);
      sc[j + 4] = static_cast<uint8_t>(sc[j + 4] | lm);
    } else {
      sc[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      sc[j - 4] = static_cast<uint8_t>(sc[j - 4] | ((ls >> 4) << 6));
      sc[j] = static_cast<uint8_t>(sc[j] | ((lm >> 4) << 6));
    }
  }
  put_half(y, max_scale / 63.f);
  put_half(y + 2, max_min / 63.f);
  // Codes again, against the scales as stored (fp16 d times the 6-bit factors).
  uint16_t dh, mh;
  std::memcpy(&dh, y, 2);
  std::memcpy(&mh, y + 2, 2);
  for (int j = 0; j < 8; ++j) {
    const float d = f16_to_f32(dh) * ls6[j];
    if (d == 0.0f) continue;
    const float dm = f16_to_f32(mh) * lm6[j];
    for (int l = 0; l < kQK; ++l) {
      codes[kQK * j + l] =
          static_cast<uint8_t>(std::clamp(nearest((x[kQK * j + l] + dm) / d), 0, 15));
    }
  }
  uint8_t* q = y + 16;
  for (int j = 0; j < kQKK; j += 64, q += 32) {
    for (int l = 0; l < 32; ++l)
      q[l] = static_cast<uint8_t>(codes[j + l] | (codes[j + l + 32] << 4));
  }
}

// Signed codes -nmax..nmax-1 (stored offset by nmax) for n values, by a search over 19 scales
// around nmax / largest magnitude weighted by x^2 (ggml's make_qx_quants, rmse_type 1).
float signed_scale_search(const float* x, int n, int nmax, int8_t* codes) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    std::fill(codes, codes + n, int8_t{0});
    return 0.0f;
  }
  const auto fit = [&](float iscale, float& sum_lx, float& sum_l2) {
    sum_lx = sum_l2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest(iscale * x[i]), -nmax, nmax - 1);
      const float w = x[i] * x[i];
      sum_lx += w * x[i] * l;
      sum_l2 += w * l * l;
    }
  };
  const auto store = [&](float iscale) {
    for (int i = 0; i < n; ++i) {
      codes[i] = static_cast<int8_t>(nmax + std::clamp(nearest(iscale * x[i]), -nmax, nmax - 1));
    }
  };
  float iscale = -nmax / max, sum_lx, sum_l2;
  fit(iscale, sum_lx, sum_l2);
  store(iscale);
  float scale = sum_l2 != 0 ? sum_lx / sum_l2 : 0.0f;
  float best = scale * sum_lx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    fit(iscale, sum_lx, sum_l2);
    if (sum_l2 > 0 && sum_lx * sum_lx > best * sum_l2) {
      store(iscale);
      scale = sum_lx / sum_l2;
      best = scale * sum_lx;
    }
  }
  return scale;
}

// Sixteen sub-blocks of 16 with int8 scales relative to one fp16 d; 6-bit codes (low four bits
// in ql, high two in qh).
void q6_k_block(const float* x, uint8_t* y) {
  int8_t codes[kQKK];
  float scales[16];
  float max_scale = 0, max_abs_scale = 0;
  for (int ib = 0; ib < 16; ++ib) {
    scales[ib] = signed_scale_search(x + 16 * ib, 16, 32, codes + 16 * ib);
    if (std::fabs(scales[ib]) > max_abs_scale) {
      max_abs_scale = std::fabs(scales[ib]);
      max_scale = scales[ib];
    }
  }
  std::memset(y, 0, 210);
  if (max_abs_scale < kGroupMaxEps) return;  // all zero: d = 0
  const float iscale = -128.f / max_scale;
  put_half(y + 208, 1 / iscale);
  auto* sc = reinterpret_cast<int8_t*>(y + 192);
  for (int ib = 0; ib < 16; ++ib) {
    sc[ib] = static_cast<int8_t>(std::min(127, nearest(iscale * scales[ib])));
  }
  uint16_t dh;
  std::memcpy(&dh, y + 208, 2);
  for (int j = 0; j < 16; ++j) {
    const float d = f16_to_f32(dh) * sc[j];
    if (d == 0.0f) continue;
    for (int i = 0; i < 16; ++i) {
      codes[16 * j + i] = static_cast<int8_t>(std::clamp(nearest(x[16 * j + i] / d), -32, 31) + 32);
    }
  }
  uint8_t* ql = y;
  uint8_t* qh = y + 128;
  for (int j = 0; j < kQKK; j += 128, ql += 64, qh += 32) {
    for (int l = 0; l < 32; ++l) {
      const auto c = [&](int at) { return static_cast<uint8_t>(codes[j + l + at]); };
      ql[l] = static_cast<uint8_t>((c(0) & 0xF) | ((c(64) & 0xF) << 4));
      ql[l + 32] = static_cast<uint8_t>((c(32) & 0xF) | ((c(96) & 0xF) << 4));
      qh[l] = static_cast<uint8_t>((c(0) >> 4) | ((c(32) >> 4) << 2) | ((c(64) >> 4) << 4) |
                                   ((c(96) >> 4) << 6));
    }
  }
}

}  // namespace

bool can_quantize_ggml(StorageDType type) {
  return type == StorageDType::kQ8_0 || type == StorageDType::kQ5_0 ||
         type == StorageDType::kQ4_K || type == StorageDType::kQ6_K;
}

void quantize_ggml(StorageDType type, const float* x, int64_t n, std::byte* out) {
  void (*block)(const float*, uint8_t*) = nullptr;
  switch (type) {
    case StorageDType::kQ8_0:
      block = q8_0_block;
      break;
    case StorageDType::kQ5_0:
      block = q5_0_block;
      break;
    case StorageDType::kQ4_K:
      block = q4_k_block;
      break;
    case StorageDType::kQ6_K:
      block = q6_k_block;
      break;
    default:
      throw Error("quantize_ggml: no quantizer for " + std::string(storage_dtype_name(type)));
  }
  const int64_t elems = storage_block_elems(type);
  const size_t bytes = storage_block_bytes(type);
  if (n % elems != 0) {
    throw Error("quantize_ggml: " + std::to_string(n) + " values are not whole " +
                std::string(storage_dtype_name(type)) + " blocks of " + std::to_string(elems));
  }
  auto* y = reinterpret_cast<uint8_t*>(out);
  for (int64_t i = 0; i < n / elems; ++i) block(x + i * elems, y + i * bytes);
}

}  // namespace bringup
