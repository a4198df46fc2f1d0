// Writing GGUF files (version 3, little-endian): typed metadata, then tensor infos and data at
// the alignment. bringup's exporter (`bringup convert --to gguf`) and the tests use it; the
// files it writes are checked by an independent reader (@huggingface/gguf) as well as ours.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "bringup/checkpoint.h"
#include "io/gguf.h"
#include "io/json_fields.h"

namespace bringup {

class GgufWriter {
 public:
  // GGUF value types (io/gguf.h).
  using Type = GgufValueType;
  static constexpr Type kU8 = kGgufU8, kI8 = kGgufI8, kU16 = kGgufU16, kI16 = kGgufI16,
                        kU32 = kGgufU32, kI32 = kGgufI32, kF32 = kGgufF32, kBool = kGgufBool,
                        kString = kGgufString, kArray = kGgufArray, kU64 = kGgufU64,
                        kI64 = kGgufI64, kF64 = kGgufF64;

  // A scalar (type not kArray), or an array of `element` values when type is kArray.
  void set(const std::string& key, Type type, const Json& value, Type element = kU8);
  // ne in ggml order (ne[0] the row length); bytes must hold exactly that many elements.
  void add_tensor(const std::string& name, std::vector<int64_t> ne, StorageDType dtype,
                  std::vector<std::byte> bytes);
  void write(const std::filesystem::path& file, uint64_t alignment = 32) const;

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> ne;
    StorageDType dtype;
    std::vector<std::byte> bytes;
  };
  std::vector<std::pair<std::string, std::string>> kv_;  // key, encoded type + value
  std::vector<Tensor> tensors_;
};

}  // namespace bringup
