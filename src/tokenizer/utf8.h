// UTF-8 helpers: validation, code point iteration, and lossy decoding as Rust's
// String::from_utf8_lossy does it (what Hugging Face tokenizers' decoders use).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace bringup::utf8 {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is invalid there (overlong
// forms, surrogates and code points past U+10FFFF are invalid).
size_t valid_sequence_length(std::string_view s, size_t i);
// Offset of the first invalid byte, or npos.
size_t first_invalid(std::string_view s);
// Replaces every maximal invalid subsequence by U+FFFD (the Unicode "substitution of maximal
// subparts" practice, which Rust follows).
std::string lossy(std::string_view bytes);
// How many bytes at the end of s are the start of a UTF-8 character that is not complete yet.
size_t incomplete_tail(std::string_view s);

void append(std::string& out, uint32_t code_point);
// Decodes the code point at s[i] (s must be valid there) and advances i.
uint32_t next(std::string_view s, size_t& i);

}  // namespace bringup::utf8
