// NumPy .npy files of float32, C order: how reference logits and hidden states are stored.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace bringup {

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

// Reads a little-endian float32 array; the error names the file and what is wrong. Arrays of more
// than max_elements are refused before anything is allocated.
NpyArray read_npy(const std::filesystem::path& file, int64_t max_elements = int64_t{1} << 31);
void write_npy(const std::filesystem::path& file, const std::vector<int64_t>& shape,
               const float* data);

}  // namespace bringup
