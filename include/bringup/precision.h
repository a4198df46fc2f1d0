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
// The policy a model runs under when none is named: native for a GGUF file (its own formats, as
// llama.cpp runs it), bfp8-mixed (the reference bring-up's) for a checkpoint directory.
Precision default_precision(const std::string& model_path);

}  // namespace bringup
