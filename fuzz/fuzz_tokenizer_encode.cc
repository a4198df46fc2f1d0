// libFuzzer: encode arbitrary bytes with the real Qwen2 tokenizer, then decode. Valid UTF-8 must
// come back exactly as its NFC form (byte-level BPE loses nothing); anything else must be a clean
// Error.
#include <utf8proc.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "bringup/error.h"
#include "bringup/tokenizer.h"

namespace {
const bringup::Tokenizer* tokenizer = nullptr;

std::string nfc(const std::string& s) {
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(
      reinterpret_cast<const utf8proc_uint8_t*>(s.data()), static_cast<utf8proc_ssize_t>(s.size()),
      &out, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) return s;
  std::string r(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  std::free(out);
  return r;
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  static const bringup::Tokenizer t = bringup::Tokenizer::load(BRINGUP_TOKENIZER_DIR);
  tokenizer = &t;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<int32_t> ids;
  try {
    ids = tokenizer->encode(text);
  } catch (const bringup::Error&) {
    return 0;  // invalid UTF-8
  }
  // Special tokens in the text decode to themselves and are not normalized, so compare piecewise
  // only when there are none.
  const std::string back = tokenizer->decode(ids);
  if (text.find("<|") == std::string::npos && back != nfc(text)) std::abort();
  return 0;
}
