// A Hugging Face checkpoint directory written as a GGUF file that llama.cpp loads, as its
// convert_hf_to_gguf.py writes one: `<arch>.*` hyperparameters, the tokenizer of tokenizer.json
// (tokens by id, added tokens CONTROL or USER_DEFINED, missing ids [PADi] UNUSED, merges, the
// pre-tokenizer's name, special ids, the chat template), llama.cpp tensor names, matrices in the
// chosen type and vectors in F32, the q/k rows of `llama` models permuted for llama.cpp's RoPE,
// and no output.weight when the embeddings are tied.
#pragma once

#include <filesystem>

#include "bringup/checkpoint.h"

namespace bringup {

// type: F16, BF16, Q8_0, Q4_K or Q6_K (F32 too); matrices whose rows are not whole blocks take
// llama-quantize's fallback types. Throws Error for what GGUF or this exporter cannot carry.
void export_gguf(const std::filesystem::path& model_dir, StorageDType type,
                 const std::filesystem::path& out);

}  // namespace bringup
