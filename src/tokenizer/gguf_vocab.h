// The tokenizer a GGUF file carries (tokenizer.ggml.*: byte-level BPE tokens, merges and token
// types, the pre-tokenizer's name, special token ids, the chat template), as the tokenizer.json
// and tokenizer_config.json Hugging Face has for the same model, so one tokenizer implementation
// serves both and a GGUF file encodes text to the ids its tokenizer.json gives.
#pragma once

#include <filesystem>
#include <string>
#include <utility>

namespace bringup {

struct GgufFile;

// {tokenizer.json, tokenizer_config.json}; throws Error naming the file and key for what the
// file lacks or bringup does not support (another tokenizer model or pre-tokenizer, BOS added to
// every text).
std::pair<std::string, std::string> gguf_tokenizer_files(const GgufFile& g,
                                                         const std::string& file);

}  // namespace bringup
