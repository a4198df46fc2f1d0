#include "tokenizer/byte_level.h"

#include "tokenizer/utf8.h"

namespace bringup {

ByteLevel::ByteLevel() {
  code_to_byte_.fill(-1);
  // Printable Latin-1 bytes stand for themselves; the others get 256, 257, ... in byte order.
  auto printable = [](int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const uint32_t cp =
        printable(b) ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + extra++);
    utf8::append(byte_to_utf8_[b], cp);
    code_to_byte_[cp] = static_cast<int16_t>(b);
  }
}

const ByteLevel& byte_level() {
  static const ByteLevel table;
  return table;
}

}  // namespace bringup
