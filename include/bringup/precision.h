// Precision policies: which number format each weight group is stored in on the device.
#pragma once

#include <string>
#include <string_view>

namespace bringup {

enum class Precision {
  kFp32,       // every weight fp32, exact fp32 math: the project's own reference path
  kBf16,       // every matrix bfloat16; matmul inputs rounded to bf16, fp32 accumulation
  kBfp8Mixed,  // the reference bring-up: bfloat8_b for MLP gate/up, embedding, lm_head; rest bf16
  kBfp8,       // bfloat8_b for every matrix
  kNative,     // every matrix as its checkpoint stores it where a kernel reads that format (GGUF
               // Q8_0, Q4_K, Q6_K, bfp tiles, F32, BF16), else bf16; fp32 norms and biases
};

// Accepts "fp32", "bf16", "bfp8-mixed", "bfp8", "native"; throws Error naming the valid values
// otherwise.
Precision parse_precision(std::string_view name);
std::string_view precision_name(Precision p);
// How the KV cache stores K and V: as the policy does (fp32 under fp32, else bf16), or named.
enum class KvPrecision {
  kDefault,
  kF32,
  kBf16,
  kBfp8,  // bfloat8_b blocks of 16 along head_dim: about half of bf16's bytes
};
// Accepts "fp32", "bf16", "bfp8"; throws Error naming the valid values otherwise.
KvPrecision parse_kv_precision(std::string_view name);
// "fp32", "bf16" or "bfp8": what the cache holds under policy p.
std::string_view kv_precision_name(KvPrecision kv, Precision p);

// The policy a model runs under when none is named: native for a GGUF file (its own formats, as
// llama.cpp runs it), bfp8-mixed (the reference bring-up's) for a checkpoint directory.
Precision default_precision(const std::string& model_path);

}  // namespace bringup
