#include "core/ggml_quants.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "bringup/error.h"
#include "core/dtype.h"

namespace bringup {

namespace {

constexpr int64_t kQK = 32;    // elements per block of the simple types
constexpr int64_t kQKK = 256;  // elements per K-quant super-block

float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// Block layouts (ggml-common.h), read byte by byte: the structs are packed there.
void q8_0(const uint8_t* b, float* y) {  // d, qs[32]
  const float d = half(b);
  for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
}

void q4_0(const uint8_t* b, float* y) {  // d, qs[16]
  const float d = half(b);
  for (int j = 0; j < kQK / 2; ++j) {
    const int x0 = (b[2 + j] & 0x0F) - 8, x1 = (b[2 + j] >> 4) - 8;
    y[j] = static_cast<float>(x0) * d;
    y[j + kQK / 2] = static_cast<float>(x1) * d;
  }
}

void q4_1(const uint8_t* b, float* y) {  // d, m, qs[16]
  const float d = half(b), m = half(b + 2);
  for (int j = 0; j < kQK / 2; ++j) {
    const int x0 = b[4 + j] & 0x0F, x1 = b[4 + j] >> 4;
    y[j] = static_cast<float>(x0) * d + m;
    y[j + kQK / 2] = static_cast<float>(x1) * d + m;
  }
}

void q5_0(const uint8_t* b, float* y) {  // d, qh[4], qs[16]
  const float d = half(b);
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  for (int j = 0; j < kQK / 2; ++j) {
    const uint8_t h0 = ((qh >> (j + 0)) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
    const int32_t x0 = ((b[6 + j] & 0x0F) | h0) - 16, x1 = ((b[6 + j] >> 4) | h1) - 16;
    y[j] = static_cast<float>(x0) * d;
    y[j + kQK / 2] = static_cast<float>(x1) * d;
  }
}

void q5_1(const uint8_t* b, float* y) {  // d, m, qh[4], qs[16]
  const float d = half(b), m = half(b + 2);
  uint32_t qh;
  std::memcpy(&qh, b + 4, 4);
  for (int j = 0; j < kQK / 2; ++j) {
    const uint8_t h0 = ((qh >> (j + 0)) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
    const int x0 = (b[8 + j] & 0x0F) | h0, x1 = (b[8 + j] >> 4) | h1;
    y[j] = static_cast<float>(x0) * d + m;
    y[j + kQK / 2] = static_cast<float>(x1) * d + m;
  }
}

void q4_k(const uint8_t* b, float* y) {  // d, dmin, scales[12], qs[128]
  const float d = half(b), min = half(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  int is = 0;
  for (int j = 0; j < kQKK; j += 64) {
    uint8_t sc, m;
    q4_k_scale_min(is + 0, scales, sc, m);
    const float d1 = d * sc, m1 = min * m;
    q4_k_scale_min(is + 1, scales, sc, m);
    const float d2 = d * sc, m2 = min * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    q += 32;
    is += 2;
  }
}

void q5_k(const uint8_t* b, float* y) {  // d, dmin, scales[12], qh[32], qs[128]
  const float d = half(b), min = half(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  int is = 0;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0; j < kQKK; j += 64) {
    uint8_t sc, m;
    q4_k_scale_min(is + 0, scales, sc, m);
    const float d1 = d * sc, m1 = min * m;
    q4_k_scale_min(is + 1, scales, sc, m);
    const float d2 = d * sc, m2 = min * m;
    for (int l = 0; l < 32; ++l)
      *y++ = d1 * static_cast<float>((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l)
      *y++ = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    ql += 32;
    is += 2;
    u1 = static_cast<uint8_t>(u1 << 2);
    u2 = static_cast<uint8_t>(u2 << 2);
  }
}

void q6_k(const uint8_t* b, float* y) {  // ql[128], qh[64], scales[16] (int8), d
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = half(b + 208);
  for (int n = 0; n < kQKK; n += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int8_t q1 = static_cast<int8_t>((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int8_t q2 = static_cast<int8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int8_t q3 = static_cast<int8_t>((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int8_t q4 = static_cast<int8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l + 0] = d * sc[is + 0] * q1;
      y[l + 32] = d * sc[is + 2] * q2;
      y[l + 64] = d * sc[is + 4] * q3;
      y[l + 96] = d * sc[is + 6] * q4;
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

}  // namespace

namespace {

// One row per storage type, in StorageDType order: name, elements and bytes per block, and the
// block decoder of the quantized ones.
struct TypeInfo {
  StorageDType type;
  const char* name;
  int64_t block;
  size_t bytes;
  void (*decode)(const uint8_t*, float*);
};
constexpr TypeInfo kTypes[] = {
    {StorageDType::kF32, "F32", 1, 4, nullptr},     {StorageDType::kBF16, "BF16", 1, 2, nullptr},
    {StorageDType::kF16, "F16", 1, 2, nullptr},     {StorageDType::kQ8_0, "Q8_0", kQK, 34, q8_0},
    {StorageDType::kQ4_0, "Q4_0", kQK, 18, q4_0},   {StorageDType::kQ4_1, "Q4_1", kQK, 20, q4_1},
    {StorageDType::kQ5_0, "Q5_0", kQK, 22, q5_0},   {StorageDType::kQ5_1, "Q5_1", kQK, 24, q5_1},
    {StorageDType::kQ4_K, "Q4_K", kQKK, 144, q4_k}, {StorageDType::kQ5_K, "Q5_K", kQKK, 176, q5_k},
    {StorageDType::kQ6_K, "Q6_K", kQKK, 210, q6_k},
};

const TypeInfo& info(StorageDType t) {
  const TypeInfo& i = kTypes[static_cast<size_t>(t)];
  if (i.type != t) throw Error("storage type table out of order");
  return i;
}

}  // namespace

std::string_view storage_dtype_name(StorageDType t) {
  return info(t).name;
}
int64_t storage_block_elems(StorageDType t) {
  return info(t).block;
}
size_t storage_block_bytes(StorageDType t) {
  return info(t).bytes;
}

size_t storage_bytes(StorageDType t, int64_t n) {
  return static_cast<size_t>(n / storage_block_elems(t)) * storage_block_bytes(t);
}

size_t storage_dtype_size(StorageDType t) {
  if (storage_block_elems(t) != 1) {
    throw Error("storage_dtype_size: " + std::string(storage_dtype_name(t)) + " is a block type");
  }
  return storage_block_bytes(t);
}

void dequantize_ggml(StorageDType type, const std::byte* src, int64_t n, float* out) {
  const TypeInfo& t = info(type);
  if (!t.decode) {
    throw Error("dequantize_ggml: " + std::string(t.name) + " is not a block type");
  }
  const auto* p = reinterpret_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / t.block; ++i) t.decode(p + i * t.bytes, out + i * t.block);
}

// Sub-block j's 6-bit scale and min (Q5_K packs them the same way).
void q4_k_scale_min(int j, const uint8_t* q, uint8_t& d, uint8_t& m) {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
  }
}

}  // namespace bringup
