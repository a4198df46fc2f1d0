// A read-only memory mapping of a whole file.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

namespace bringup {

class MappedFile {
 public:
  // Throws Error naming the path when it cannot be opened or mapped.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Drops [offset, offset + bytes) from the resident set (whole pages inside the range only).
  void release(size_t offset, size_t bytes) const;
  // For a mapping read where it lies: pages not yet in the page cache are read in 2 MiB folios
  // (one TLB entry each; pages already cached keep their size), and the page tables are made now
  // rather than by the first reads (an old kernel without MADV_POPULATE_READ makes them lazily).
  void populate() const;

 private:
  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

// Reads a whole (small) file into a string; throws Error naming the path on failure, and for files
// larger than max_bytes (JSON is parsed into a DOM several times its size).
constexpr size_t kMaxTextFile = size_t{256} << 20;
std::string read_text_file(const std::filesystem::path& path, size_t max_bytes = kMaxTextFile);

}  // namespace bringup
