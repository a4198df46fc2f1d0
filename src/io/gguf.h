// GGUF files (llama.cpp's model format, versions 2 and 3, little-endian): the header, every
// metadata key/value (all value types, arrays included) and the tensor infos, read from memory
// (a mapped file). GGUF files are untrusted: every count, length, offset and size is checked
// against the file before it is used, and each refusal is one line naming the file and what is
// wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "bringup/checkpoint.h"
#include "io/json_fields.h"

namespace bringup {

// GGUF metadata value types.
enum GgufValueType : uint32_t {
  kGgufU8,
  kGgufI8,
  kGgufU16,
  kGgufI16,
  kGgufU32,
  kGgufI32,
  kGgufF32,
  kGgufBool,
  kGgufString,
  kGgufArray,
  kGgufU64,
  kGgufI64,
  kGgufF64,
};

struct GgufTensor {
  std::string name;
  StorageDType dtype = StorageDType::kF32;
  std::vector<int64_t> ne;  // ggml order: ne[0] varies fastest (a row's length)
  uint64_t offset = 0;      // from the start of the file
  uint64_t bytes = 0;
};

struct GgufFile {
  uint32_t version = 0;
  // Every key/value as JSON: integers, floats, booleans, strings and arrays of them. Strings are
  // kept as their bytes (GGUF promises UTF-8; token strings are checked where they are used).
  Json metadata = Json::object();
  std::vector<GgufTensor> tensors;
  uint64_t alignment = 32;
  uint64_t data_offset = 0;  // where tensor data starts
};

// ggml's type ids of the tensor types bringup reads.
constexpr uint32_t kGgmlTypeF32 = 0, kGgmlTypeF16 = 1, kGgmlTypeQ4_0 = 2, kGgmlTypeQ4_1 = 3,
                   kGgmlTypeQ5_0 = 6, kGgmlTypeQ5_1 = 7, kGgmlTypeQ8_0 = 8, kGgmlTypeQ4_K = 12,
                   kGgmlTypeQ5_K = 13, kGgmlTypeQ6_K = 14, kGgmlTypeBF16 = 30;
uint32_t ggml_type_id(StorageDType t);

// Limits that keep a hostile file from exhausting memory or time.
constexpr uint64_t kMaxGgufTensors = uint64_t{1} << 20;
constexpr uint64_t kMaxGgufArrayDepth = 4;

GgufFile parse_gguf(const std::byte* data, size_t size, const std::string& file);

// The model config a GGUF file's `<arch>.*` metadata implies (io/gguf_checkpoint.cpp).
ModelConfig gguf_model_config(const GgufFile& g, const std::string& file);

// llama.cpp's tensor names (token_embd.weight, blk.N.attn_q.weight, ...) and the Hugging Face
// ones (model.embed_tokens.weight, model.layers.N.self_attn.q_proj.weight, ...), each way; ""
// for a name outside the table.
std::string hf_tensor_name(const std::string& gguf_name);
std::string gguf_tensor_name(const std::string& hf_name);
// Whether llama.cpp stores this tensor's rows permuted for its RoPE in `llama` models (the q and
// k projections): within each head, file row 2a + b is Hugging Face row b * head_dim/2 + a.
bool rope_permuted(const std::string& gguf_name);
// Applies (to_hf) or undoes that permutation on rows of row_bytes each, heads heads.
std::vector<std::byte> permute_rope_rows(const std::byte* rows, int64_t n_rows, size_t row_bytes,
                                         int64_t heads, bool to_hf, const std::string& what);

// Metadata helpers; the error names the file and key.
const Json& gguf_value(const GgufFile& g, const std::string& key, const std::string& file);
bool gguf_has(const GgufFile& g, const std::string& key);

}  // namespace bringup
