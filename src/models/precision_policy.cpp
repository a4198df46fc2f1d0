#include "models/precision_policy.h"

#include <string>

#include "bringup/error.h"

namespace bringup {

Precision parse_precision(std::string_view name) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "bf16") return Precision::kBf16;
  if (name == "bfp8-mixed") return Precision::kBfp8Mixed;
  if (name == "bfp8") return Precision::kBfp8;
  throw Error("unknown precision '" + std::string(name) +
              "' (expected fp32, bf16, bfp8-mixed or bfp8)");
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
  }
  return "?";
}

WeightPolicy weight_policy(Precision p) {
  using F = WeightFormat;
  switch (p) {
    case Precision::kFp32:
      return {F::kF32, F::kF32, F::kF32, F::kF32, F::kF32, false, CacheDType::kF32};
    case Precision::kBf16:
      return {F::kBf16, F::kBf16, F::kBf16, F::kBf16, F::kBf16, true, CacheDType::kBf16};
    case Precision::kBfp8Mixed:
      // The reference bring-up: block float where the bytes are (MLP up/gate, vocabulary), bf16
      // where accuracy is sensitive (attention, the down projection that feeds the residual).
      return {F::kBfp8, F::kBfp8, F::kBf16, F::kBfp8, F::kBf16, true, CacheDType::kBf16};
    case Precision::kBfp8:
      return {F::kBfp8, F::kBfp8, F::kBfp8, F::kBfp8, F::kBfp8, true, CacheDType::kBf16};
  }
  throw Error("unknown precision policy");
}

}  // namespace bringup
