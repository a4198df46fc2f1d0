#include "models/precision_policy.h"

#include <string>

#include "bringup/checkpoint.h"
#include "bringup/error.h"

namespace bringup {

Precision parse_precision(std::string_view name) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "bf16") return Precision::kBf16;
  if (name == "bfp8-mixed") return Precision::kBfp8Mixed;
  if (name == "bfp8") return Precision::kBfp8;
  if (name == "native") return Precision::kNative;
  throw Error("unknown precision '" + std::string(name) +
              "' (expected fp32, bf16, bfp8-mixed, bfp8 or native)");
}

KvPrecision parse_kv_precision(std::string_view name) {
  if (name == "fp32") return KvPrecision::kF32;
  if (name == "bf16") return KvPrecision::kBf16;
  if (name == "bfp8") return KvPrecision::kBfp8;
  throw Error("unknown kv precision '" + std::string(name) + "' (expected fp32, bf16 or bfp8)");
}

CacheDType cache_dtype(Precision p, KvPrecision kv) {
  switch (kv) {
    case KvPrecision::kDefault:
      return weight_policy(p).cache;
    case KvPrecision::kF32:
      return CacheDType::kF32;
    case KvPrecision::kBf16:
      return CacheDType::kBf16;
    case KvPrecision::kBfp8:
      return CacheDType::kBfp8;
  }
  throw Error("unknown kv precision");
}

std::string_view kv_precision_name(KvPrecision kv, Precision p) {
  return cache_dtype_name(cache_dtype(p, kv));
}

Precision default_precision(const std::string& model_path) {
  return is_gguf_file(model_path) ? Precision::kNative : Precision::kBfp8Mixed;
}

std::string_view precision_name(Precision p) {
  switch (p) {
    case Precision::kFp32:
      return "fp32";
    case Precision::kBf16:
      return "bf16";
    case Precision::kBfp8Mixed:
      return "bfp8-mixed";
    case Precision::kBfp8:
      return "bfp8";
    case Precision::kNative:
      return "native";
  }
  return "?";
}

WeightPolicy weight_policy(Precision p) {
  using F = WeightFormat;
  switch (p) {
    case Precision::kFp32:
      return {F::kF32, F::kF32, F::kF32, F::kF32, F::kF32, false, CacheDType::kF32, false};
    case Precision::kBf16:
      return {F::kBf16, F::kBf16, F::kBf16, F::kBf16, F::kBf16, true, CacheDType::kBf16, false};
    case Precision::kBfp8Mixed:
      // The reference bring-up: block float where the bytes are (MLP up/gate, vocabulary), bf16
      // where accuracy is sensitive (attention, the down projection that feeds the residual).
      return {F::kBfp8, F::kBfp8, F::kBf16, F::kBfp8, F::kBf16, true, CacheDType::kBf16, false};
    case Precision::kBfp8:
      return {F::kBfp8, F::kBfp8, F::kBfp8, F::kBfp8, F::kBfp8, true, CacheDType::kBf16, false};
    case Precision::kNative:
      // The group formats are what a matrix stored in another format falls back to.
      return {F::kBf16, F::kBf16, F::kBf16, F::kBf16, F::kBf16, false, CacheDType::kBf16, true};
  }
  throw Error("unknown precision policy");
}

WeightFormat device_format(const WeightPolicy& p, WeightFormat group,
                           std::span<const HostMatrix> parts) {
  if (!p.native || parts.empty()) return group;
  const HostMatrix& first = parts[0];
  for (const HostMatrix& m : parts) {
    if (m.tiles != first.tiles || m.dtype != first.dtype) return WeightFormat::kBf16;
  }
  if (first.is_bfp_tiles()) return first.tiles;
  switch (first.dtype) {
    case StorageDType::kQ8_0:
      return WeightFormat::kQ8_0;
    case StorageDType::kQ4_K:
      return WeightFormat::kQ4_K;
    case StorageDType::kQ6_K:
      return WeightFormat::kQ6_K;
    case StorageDType::kF32:
      return WeightFormat::kF32;
    default:
      return WeightFormat::kBf16;
  }
}

}  // namespace bringup
