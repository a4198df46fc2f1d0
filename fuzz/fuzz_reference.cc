// libFuzzer: the bringup-reference/1 reader and its vocabulary check.
#include <cstddef>
#include <cstdint>
#include <string>

#include "bringup/error.h"
#include "eval/reference.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const bringup::Reference r = bringup::parse_reference(
        std::string(reinterpret_cast<const char*>(data), size), "reference.json");
    bringup::check_reference_vocab(r, 4096, "reference.json");
  } catch (const bringup::Error&) {
  }
  return 0;
}
