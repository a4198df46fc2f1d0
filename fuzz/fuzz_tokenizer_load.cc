// libFuzzer: loading tokenizer.json (and tokenizer_config.json after a NUL byte), then encoding and
// decoding a little text with whatever loaded.
#include <cstddef>
#include <cstdint>
#include <string>

#include "bringup/error.h"
#include "bringup/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  try {
    const bringup::Tokenizer t = bringup::Tokenizer::parse(
        input.substr(0, nul), nul == std::string::npos ? "" : input.substr(nul + 1), "fuzz");
    const std::vector<int32_t> ids = t.encode("Hello world, 你好 😀 don't\n\n  x");
    t.decode(ids);
  } catch (const bringup::Error&) {
  }
  return 0;
}
