// The safetensors format: an 8-byte little-endian header length, a JSON header mapping tensor
// names to dtype, shape and [begin, end) byte offsets into the data that follows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "bringup/checkpoint.h"

namespace bringup {

struct SafetensorsEntry {
  std::string name;
  StorageDType dtype = StorageDType::kF32;
  std::vector<int64_t> shape;
  size_t offset = 0;  // from the start of the file
  size_t bytes = 0;
};

// Largest header accepted (the safetensors reference implementation's limit).
constexpr size_t kMaxSafetensorsHeader = size_t{100} << 20;

// Validates the header of a safetensors file held in memory: length within the file, well-formed
// JSON, supported dtypes, byte counts that match the shapes, offsets inside the data and not
// overlapping. Errors name `file` and the tensor.
std::vector<SafetensorsEntry> parse_safetensors(const std::byte* data, size_t size,
                                                const std::string& file);

// Writes a safetensors file tensor by tensor, so a checkpoint larger than memory can be produced.
// `fill(i, out)` writes tensor i's bytes into out (entries[i].bytes long, in chunks of at most
// chunk bytes; `first` is the byte offset of this chunk inside the tensor).
struct SafetensorsSpec {
  std::string name;
  StorageDType dtype;
  std::vector<int64_t> shape;
};
using SafetensorsFill =
    std::function<void(size_t tensor, size_t first, std::byte* out, size_t bytes)>;
void write_safetensors(const std::filesystem::path& path, const std::vector<SafetensorsSpec>& specs,
                       const SafetensorsFill& fill);

StorageDType parse_storage_dtype(const std::string& name, const std::string& context);

}  // namespace bringup
