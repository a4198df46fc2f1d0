// What each fuzz target does with one input. libFuzzer drives these through the fuzz_*.cc shims;
// tests/unit/fuzz_regression_test.cpp replays every input that once failed.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bringup::fuzz {

// The safetensors header and tensor table, then the shapes a tiny fixed Qwen2 config implies.
void safetensors(const uint8_t* data, size_t size);
// config.json, then a NUL byte, then generation_config.json.
void config(const uint8_t* data, size_t size);
// tokenizer.json (then a NUL byte and tokenizer_config.json), and a little text through it.
void tokenizer_load(const uint8_t* data, size_t size);
// Arbitrary bytes through the real Qwen2 tokenizer: valid UTF-8 must decode back to its NFC form.
void tokenizer_encode(const uint8_t* data, size_t size);
// A chat template parsed and rendered with a small conversation.
void chat_template(const uint8_t* data, size_t size);
// A chat template parsed only: the lexer and parser at many times chat_template's speed (a
// render may loop and write up to its limits), so they see more inputs in a campaign.
void chat_template_parse(const uint8_t* data, size_t size);
// The bringup-reference/1 reader and its vocabulary check.
void reference(const uint8_t* data, size_t size);
// A GGUF file: header, metadata and tensor table, every tensor's first and last row decoded,
// the config its metadata implies, and its tokenizer (when it has one) encoding a little text.
void gguf(const uint8_t* data, size_t size);
// An OpenAI request body (first byte: 'c' chat, else completion) checked as the server checks it
// with the real Qwen2 tokenizer, then answered with a made-up reply; only ApiError may escape.
void openai_request(const uint8_t* data, size_t size);

}  // namespace bringup::fuzz
