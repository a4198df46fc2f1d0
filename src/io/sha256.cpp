#include "io/sha256.h"

#include <openssl/evp.h>

#include <fstream>

#include "bringup/error.h"

namespace bringup {

struct Sha256::Ctx {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md{EVP_MD_CTX_new(), EVP_MD_CTX_free};
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  if (!ctx_->md || EVP_DigestInit_ex(ctx_->md.get(), EVP_sha256(), nullptr) != 1) {
    throw Error("sha256: cannot initialise OpenSSL");
  }
}

Sha256::~Sha256() = default;

void Sha256::update(const void* data, size_t bytes) {
  EVP_DigestUpdate(ctx_->md.get(), data, bytes);
}

std::array<uint8_t, 32> Sha256::digest() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_->md.get(), digest, &len);
  std::array<uint8_t, 32> out{};
  std::copy(digest, digest + std::min<unsigned int>(len, 32), out.begin());
  return out;
}

std::string to_hex(const std::array<uint8_t, 32>& digest) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (uint8_t b : digest) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

std::string sha256_files(const std::vector<std::filesystem::path>& files) {
  Sha256 sha;
  std::vector<char> buf(size_t{4} << 20);
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) throw Error(f.string() + ": cannot open");
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      sha.update(buf.data(), static_cast<size_t>(in.gcount()));
    }
  }
  return to_hex(sha.digest());
}

}  // namespace bringup
