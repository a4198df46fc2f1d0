// SHA-256 of files (OpenSSL's libcrypto), for the weights_sha256 field of reference files.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace bringup {

// Lower-case hex digest of the files' bytes, concatenated in the given order.
std::string sha256_files(const std::vector<std::filesystem::path>& files);

}  // namespace bringup
