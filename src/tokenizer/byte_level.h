// GPT-2's byte-level alphabet, which Qwen2's tokenizer uses: every byte stands for one printable
// Unicode character, so that BPE runs on text without control characters or spaces.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace bringup {

class ByteLevel {
 public:
  ByteLevel();
  // The UTF-8 of the character standing for byte b.
  const std::string& encode(uint8_t b) const { return byte_to_utf8_[b]; }
  // The byte a code point stands for, or -1 if it stands for none.
  int decode(uint32_t code_point) const {
    return code_point < code_to_byte_.size() ? code_to_byte_[code_point] : -1;
  }

 private:
  std::array<std::string, 256> byte_to_utf8_;
  std::array<int16_t, 324> code_to_byte_;
};

const ByteLevel& byte_level();

}  // namespace bringup
