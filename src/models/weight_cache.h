// The packed-weight cache: every weight of a model in the device's own layout, in one file, so
// that a later load maps it instead of converting (as tt-metal caches converted tensors).
//
// File layout (little-endian):
//   "BRUPWC01"  u64 header_bytes  u64 file_bytes  char key[64] (hex)  u64 entries
//   entries x { u64 kind (0 matrix, 1 vector)  u64 n  i64 layout[n]  u64 m  {u64 offset, bytes}[m]
//   } u8 sha256[32] of every header byte before it buffers, each at a 4096-byte aligned offset
// A matrix's layout and buffers are Device::weight_image's; a vector's layout is {numel} and its
// one buffer numel fp32 values. The key is a SHA-256 of the checkpoint's files (names, sizes,
// modification times), every tensor's name, type, shape and first and last bytes, the precision
// policy and the device's layout version.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "bringup/checkpoint.h"
#include "bringup/precision.h"
#include "device/device.h"
#include "models/weights.h"

namespace bringup {

// read_weight_cache's answer when there is no file yet (not a fault worth reporting).
inline constexpr const char* kNoCacheFile = "no cache file yet";

// The cache file of checkpoint `ck` under `precision` in `dir`.
std::filesystem::path weight_cache_file(const std::filesystem::path& dir, const Checkpoint& ck,
                                        Precision precision);
std::string weight_cache_key(const Checkpoint& ck, Precision precision, const std::string& layout);

// Fills every slot from the cache file and returns "", or returns why the file cannot be used
// (absent, truncated, corrupt header, stale key, not these weights), leaving slots as they were.
// The file is mapped; with `keep_mapped` the matrices stay there (read-only, shared with the page
// cache, no copy), so the file must not be changed in place while a model uses it, which is why
// writers only ever replace it by rename. Without, the device copies them into its own memory.
std::string read_weight_cache(const std::filesystem::path& file, const std::string& key,
                              const Checkpoint& ck, const std::vector<WeightSlot>& slots,
                              Device& dev, bool keep_mapped);
// Writes the slots' weights into the cache file (through a temporary file renamed into place, so
// a reader never sees half a file). Returns "", or why it could not be written.
std::string write_weight_cache(const std::filesystem::path& file, const std::string& key,
                               const std::vector<WeightSlot>& slots, Device& dev);

// Seconds to read the whole file with `threads` threads (chunks of 64 MiB into buffers reused
// for every chunk): what a load that copied the file would at least take, the yardstick for a
// load from the cache, which maps it.
double time_file_read(const std::filesystem::path& file, int threads);

}  // namespace bringup
