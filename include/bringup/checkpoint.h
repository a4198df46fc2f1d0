// A Hugging Face checkpoint directory, opened: config, generation config and every weight tensor,
// memory-mapped (never copied whole into RAM) and checked against the shapes the config implies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bringup/config.h"

namespace bringup {

// How a checkpoint stores a tensor: element types (safetensors, GGUF), and ggml's block
// quantizations (GGUF files), each block holding storage_block_elems() consecutive elements of a
// row in storage_block_bytes() bytes.
enum class StorageDType {
  kF32,
  kBF16,
  kF16,
  kQ8_0,
  kQ4_0,
  kQ4_1,
  kQ5_0,
  kQ5_1,
  kQ4_K,
  kQ5_K,
  kQ6_K
};
std::string_view storage_dtype_name(StorageDType t);  // "F32", "BF16", ..., "Q4_K"
int64_t storage_block_elems(StorageDType t);          // 1 for element types
size_t storage_block_bytes(StorageDType t);
// Bytes of n elements; n must be a multiple of the block (callers check rows when they load).
size_t storage_bytes(StorageDType t, int64_t n);
// Bytes per element of an element type (F32, BF16, F16).
size_t storage_dtype_size(StorageDType t);

// One tensor inside a mapped safetensors file.
struct TensorView {
  std::string name;
  StorageDType dtype = StorageDType::kF32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;
  size_t bytes = 0;
  std::string file;  // which file it lives in, for error messages

  int64_t numel() const;
  // Element i converted to fp32 (exact for every supported dtype).
  float at(int64_t i) const;
};

class MappedFile;

class Checkpoint {
 public:
  // Opens config.json, generation_config.json (optional) and model.safetensors or the shards
  // listed in model.safetensors.index.json. Throws Error naming the file and what is wrong.
  // `path` may also be a GGUF file (llama.cpp's format; architectures qwen2 and llama): its
  // metadata becomes the config, its tensors are mapped under the Hugging Face names, and its
  // quantized tensors are decoded as ggml decodes them when a model is built.
  static Checkpoint open(const std::filesystem::path& dir);
  // A checkpoint whose tensors live in the caller's memory (a framework's model already loaded,
  // e.g. a Hugging Face model in Python): config.json's and generation_config.json's text (the
  // latter may be empty) and a view of every tensor. The memory must stay valid while the
  // checkpoint is used; build_model copies what the model keeps. `label` names the model in
  // results and stands in for the file in errors. Throws Error for a view whose bytes do not
  // match its shape and dtype, a null pointer, or a name given twice.
  static Checkpoint from_memory(const std::string& label, const std::string& config_json,
                                const std::string& generation_config_json,
                                std::vector<TensorView> tensors);

  Checkpoint(Checkpoint&&) noexcept;
  Checkpoint& operator=(Checkpoint&&) noexcept;
  ~Checkpoint();

  const std::filesystem::path& dir() const { return dir_; }
  // The directory's own name ("Arcee-Spark" for /models/Arcee-Spark/), used to label results.
  std::string name() const;
  const ModelConfig& config() const { return config_; }
  const GenerationConfig& generation_config() const { return generation_; }
  // Throws Error naming the tensor when it is absent.
  const TensorView& tensor(const std::string& name) const;
  bool has_tensor(const std::string& name) const;
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  // How the tensors are stored, by type: "Q8_0 x 169, F32 x 113".
  std::string storage_summary() const;
  // The files its tensors are mapped from (none for a checkpoint in memory).
  std::vector<std::filesystem::path> files() const;
  // Total bytes of tensor data in the checkpoint files.
  size_t weight_bytes() const;
  // Drops the mapped pages of a tensor from this process's resident set once it has been
  // converted; the mapping stays valid and refaults from the file if read again.
  void release(const TensorView& t) const;

 private:
  Checkpoint() = default;
  static Checkpoint open_gguf(const std::filesystem::path& file);
  std::filesystem::path dir_;
  std::vector<std::vector<std::byte>> owned_;  // tensors rearranged from a GGUF file
  std::string label_;  // from_memory's label; name() otherwise comes from dir_
  ModelConfig config_;
  GenerationConfig generation_;
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, TensorView> tensors_;
};

// Whether `path` is a GGUF file (by its first four bytes) rather than a checkpoint directory.
bool is_gguf_file(const std::filesystem::path& path);
// The config of a checkpoint directory (config.json) or a GGUF file (its metadata), without
// opening the weights.
ModelConfig load_checkpoint_config(const std::filesystem::path& path);

// A tensor name and the [rows, cols] / [n] shape a config implies (a model family's tensor list).
struct ExpectedTensor {
  std::string name;
  std::vector<int64_t> shape;
};
// Every expected tensor is present with its shape; the error names `dir` or the file.
void check_tensors(const std::vector<ExpectedTensor>& expected,
                   const std::map<std::string, TensorView>& tensors, const std::string& dir);

}  // namespace bringup
