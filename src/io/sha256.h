// SHA-256 (OpenSSL's libcrypto): of files, for the weights_sha256 field of reference files, and
// of bytes fed piece by piece, for the packed-weight cache's key and header check.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace bringup {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t bytes);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // The digest of everything fed so far; the hasher is spent afterwards.
  std::array<uint8_t, 32> digest();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

std::string to_hex(const std::array<uint8_t, 32>& digest);

// Lower-case hex digest of the files' bytes, concatenated in the given order.
std::string sha256_files(const std::vector<std::filesystem::path>& files);

}  // namespace bringup
