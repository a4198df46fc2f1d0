#include "tokenizer/utf8.h"

namespace bringup::utf8 {

namespace {
// The valid range of the second byte for each lead byte (Unicode Table 3-7).
bool second_byte_ok(uint8_t lead, uint8_t b) {
  if (lead == 0xE0) return b >= 0xA0 && b <= 0xBF;
  if (lead == 0xED) return b >= 0x80 && b <= 0x9F;
  if (lead == 0xF0) return b >= 0x90 && b <= 0xBF;
  if (lead == 0xF4) return b >= 0x80 && b <= 0x8F;
  return b >= 0x80 && b <= 0xBF;
}
size_t expected_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}
// Bytes of a valid prefix of the sequence at s[i] (at least 1 if the lead byte is valid).
size_t valid_prefix(std::string_view s, size_t i) {
  const uint8_t lead = static_cast<uint8_t>(s[i]);
  const size_t n = expected_length(lead);
  if (n <= 1) return n;
  size_t k = 1;
  for (; k < n && i + k < s.size(); ++k) {
    const uint8_t b = static_cast<uint8_t>(s[i + k]);
    if (k == 1 ? !second_byte_ok(lead, b) : (b < 0x80 || b > 0xBF)) break;
  }
  return k;
}
}  // namespace

size_t valid_sequence_length(std::string_view s, size_t i) {
  const size_t n = expected_length(static_cast<uint8_t>(s[i]));
  return n != 0 && valid_prefix(s, i) == n ? n : 0;
}

size_t first_invalid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = valid_sequence_length(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

std::string lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t n = valid_sequence_length(s, i);
    if (n) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      const size_t prefix = valid_prefix(s, i);
      i += prefix ? prefix : 1;
    }
  }
  return out;
}

size_t incomplete_tail(std::string_view s) {
  // A character is at most 4 bytes: look at the last 3 for a lead byte whose sequence is a
  // valid prefix that runs to the end.
  for (size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const size_t i = s.size() - back;
    const uint8_t b = static_cast<uint8_t>(s[i]);
    if (b >= 0x80 && b <= 0xBF) continue;  // continuation byte: keep looking for the lead
    const size_t n = expected_length(b);
    return n > back && valid_prefix(s, i) == back ? back : 0;
  }
  return 0;
}

void append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

uint32_t next(std::string_view s, size_t& i) {
  const uint8_t lead = static_cast<uint8_t>(s[i]);
  const size_t n = expected_length(lead);
  uint32_t cp = n == 1 ? lead : lead & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
  i += n ? n : 1;
  return cp;
}

}  // namespace bringup::utf8
