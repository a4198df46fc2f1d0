// libFuzzer: the safetensors header and tensor table, then the shapes a (tiny, fixed) Qwen2 config
// implies. Malformed input must end in bringup::Error, never a crash or an out-of-bounds read.
#include <cstddef>
#include <cstdint>
#include <map>

#include "bringup/checkpoint.h"
#include "bringup/error.h"
#include "io/safetensors.h"

namespace {
// The shape of the seed corpus (fuzz/corpus/safetensors, written by make_seeds.py).
bringup::ModelConfig tiny() {
  return bringup::parse_model_config(
      R"({"model_type": "qwen2", "vocab_size": 8, "hidden_size": 4, "intermediate_size": 4,
          "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
          "max_position_embeddings": 16, "tie_word_embeddings": true})",
      "fuzz config");
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bringup::ModelConfig config = tiny();
  try {
    const auto* bytes = reinterpret_cast<const std::byte*>(data);
    std::map<std::string, bringup::TensorView> tensors;
    for (auto& e : bringup::parse_safetensors(bytes, size, "fuzz.safetensors")) {
      bringup::TensorView v{e.name,           e.dtype, e.shape,
                            bytes + e.offset, e.bytes, "fuzz.safetensors"};
      // Reading the first and last element proves the offsets point inside the input.
      if (v.numel() > 0) (void)(v.at(0) + v.at(v.numel() - 1));
      tensors.emplace(e.name, std::move(v));
    }
    bringup::check_qwen2_tensors(config, tensors, "fuzz");
  } catch (const bringup::Error&) {
  }
  return 0;
}
