// libFuzzer: config.json and generation_config.json. The input is the config, then a NUL byte, then
// the generation config.
#include <cstddef>
#include <cstdint>
#include <string>

#include "bringup/config.h"
#include "bringup/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  try {
    bringup::parse_model_config(input.substr(0, nul), "config.json");
  } catch (const bringup::Error&) {
  }
  if (nul != std::string::npos) {
    try {
      bringup::parse_generation_config(input.substr(nul + 1), "generation_config.json");
    } catch (const bringup::Error&) {
    }
  }
  return 0;
}
