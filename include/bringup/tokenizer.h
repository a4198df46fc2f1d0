// The Hugging Face tokenizer of a checkpoint (tokenizer.json + tokenizer_config.json): byte-level
// BPE as Qwen2 uses it, reproducing transformers' ids and decoded text exactly.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bringup {

class Tokenizer {
 public:
  // Reads dir/tokenizer.json and, when present, dir/tokenizer_config.json. Throws Error naming the
  // file and field when they are missing, malformed or use a feature not implemented.
  // `dir` may also be a GGUF file: its tokenizer.ggml.* metadata (tokenizer/gguf_vocab.h).
  static Tokenizer load(const std::filesystem::path& dir);
  // load(), or nullopt when there is no tokenizer there (no tokenizer.json in a directory, no
  // tokenizer.ggml.tokens in a GGUF file); a tokenizer that is there but broken is still an Error.
  static std::optional<Tokenizer> load_if_present(const std::filesystem::path& dir);
  // The same from the files' text (tokenizer_config may be empty); `source` names them in errors.
  static Tokenizer parse(std::string_view tokenizer_json, std::string_view tokenizer_config_json,
                         const std::string& source);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Longest text one encode() call takes (its working memory is a few times the text).
  static constexpr size_t kMaxEncodeBytes = size_t{32} << 20;
  // Ids are indices into dense tables; real vocabularies stay far below this (Qwen2: 151665),
  // and it bounds what a hostile tokenizer.json can make us allocate.
  static constexpr int64_t kMaxTokenId = int64_t{1} << 22;

  // Text (UTF-8; invalid UTF-8 is an Error) to ids. Special tokens written in the text become
  // their ids, as transformers does by default. add_special_tokens: also the tokens the tokenizer
  // adds around a text (the BOS id where tokenizer_config.json's add_bos_token or a GGUF file's
  // tokenizer.ggml.add_bos_token asks for it), as transformers' tokenizer(text) and llama.cpp do
  // for a prompt; a chat template writes its own, so rendered chats are encoded without.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = false) const;
  bool adds_bos() const;  // whether encode(text, true) starts with the BOS id
  // Ids to text; byte sequences that are not valid UTF-8 become U+FFFD. Ids outside the
  // tokenizer's vocabulary are an Error.
  std::string decode(std::span<const int32_t> ids) const;
  // The raw bytes one id stands for (a token may hold part of a UTF-8 character). Empty for ids
  // without a token (the padding rows of a model's embedding).
  std::string token_bytes(int32_t id) const;

  int64_t vocab_size() const;  // one past the largest id that has a token
  std::optional<int32_t> token_id(std::string_view token) const;
  bool is_special(int32_t id) const;

  // From tokenizer_config.json (empty / nullopt when absent).
  const std::string& chat_template() const;
  const std::string& eos_token() const;
  const std::string& bos_token() const;

 private:
  static Tokenizer load_json_files(const std::filesystem::path& dir);  // tokenizer*.json
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Turns a stream of token ids into text without ever splitting a UTF-8 character: bytes of a
// character that continues in the next token are held back until it is complete.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}
  // Text that is complete after this id (possibly empty).
  std::string push(int32_t id);
  // Whatever is still held (an incomplete character becomes U+FFFD).
  std::string flush();

 private:
  const Tokenizer* tokenizer_;
  std::string pending_;
};

}  // namespace bringup
