#include "tokenizer/gguf_vocab.h"

#include "bringup/error.h"
#include "io/gguf.h"
#include "tokenizer/utf8.h"

namespace bringup {

namespace {

// The pre-tokenizers llama.cpp names in tokenizer.ggml.pre, as the models' tokenizer.json
// writes them: {Split regex, NFC normalizer}.
struct PreTokenizer {
  const char* name;
  const char* regex;
  bool nfc;
};
const PreTokenizer kPreTokenizers[] = {
    {"qwen2",
     R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     true},
    {"llama-bpe",
     R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     false},
};

// llama.cpp's token types.
enum : int64_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6
};

const Json& array_of(const GgufFile& g, const char* key, const std::string& file) {
  const Json& v = gguf_value(g, key, file);
  if (!v.is_array()) throw Error(file + ": metadata '" + key + "' must be an array");
  return v;
}

std::string checked_string(const Json& v, const char* key, size_t i, const std::string& file) {
  if (!v.is_string()) {
    throw Error(file + ": metadata '" + std::string(key) + "' entry " + std::to_string(i) +
                " must be a string");
  }
  const std::string& s = v.get_ref<const std::string&>();
  if (utf8::first_invalid(s) != std::string::npos) {
    throw Error(file + ": metadata '" + std::string(key) + "' entry " + std::to_string(i) +
                " is not valid UTF-8");
  }
  return s;
}

}  // namespace

std::pair<std::string, std::string> gguf_tokenizer_files(const GgufFile& g,
                                                         const std::string& file) {
  const Json& model = gguf_value(g, "tokenizer.ggml.model", file);
  if (!model.is_string() || model.get<std::string>() != "gpt2") {
    // (dumped with replacement: the file's bytes need not be UTF-8)
    throw Error(file + ": tokenizer.ggml.model is " +
                model.dump(-1, ' ', false, Json::error_handler_t::replace) +
                "; bringup reads byte-level BPE ('gpt2') tokenizers");
  }
  std::string pre_name = "default";
  if (gguf_has(g, "tokenizer.ggml.pre")) {
    const Json& p = gguf_value(g, "tokenizer.ggml.pre", file);
    if (!p.is_string()) throw Error(file + ": tokenizer.ggml.pre must be a string");
    pre_name = p.get<std::string>();
  }
  const PreTokenizer* pre = nullptr;
  for (const PreTokenizer& p : kPreTokenizers) {
    if (pre_name == p.name) pre = &p;
  }
  if (!pre) {
    throw Error(file + ": tokenizer.ggml.pre is '" + pre_name +
                "'; bringup reads the qwen2 and llama-bpe pre-tokenizers");
  }
  bool add_bos = false;
  if (gguf_has(g, "tokenizer.ggml.add_bos_token")) {
    const Json& b = gguf_value(g, "tokenizer.ggml.add_bos_token", file);
    if (!b.is_boolean()) throw Error(file + ": tokenizer.ggml.add_bos_token must be a bool");
    add_bos = b.get<bool>();
  }

  const Json& tokens = array_of(g, "tokenizer.ggml.tokens", file);
  const Json* types = gguf_has(g, "tokenizer.ggml.token_type")
                          ? &array_of(g, "tokenizer.ggml.token_type", file)
                          : nullptr;
  if (types && types->size() != tokens.size()) {
    throw Error(file + ": tokenizer.ggml.token_type has " + std::to_string(types->size()) +
                " entries for " + std::to_string(tokens.size()) + " tokens");
  }
  Json vocab = Json::object(), added = Json::array();
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string tok = checked_string(tokens[i], "tokenizer.ggml.tokens", i, file);
    int64_t type = kNormal;
    if (types) {
      if (!(*types)[i].is_number_integer()) {
        throw Error(file + ": tokenizer.ggml.token_type entry " + std::to_string(i) +
                    " must be an integer");
      }
      type = (*types)[i].get<int64_t>();
    }
    if (type == kUnused) continue;  // padding rows of the embedding: no token
    if (type == kControl || type == kUserDefined) {
      added.push_back({{"id", i},
                       {"content", tok},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", type != kControl},
                       {"special", type == kControl}});
    } else if (type == kNormal || type == kUnknown || type == kByte) {
      if (vocab.contains(tok)) {
        throw Error(file + ": tokenizer.ggml.tokens holds '" + tok + "' twice");
      }
      vocab[tok] = i;
    } else {
      throw Error(file + ": tokenizer.ggml.token_type entry " + std::to_string(i) + " is " +
                  std::to_string(type) + " (expected 1 to 6)");
    }
  }
  Json merges = Json::array();
  if (gguf_has(g, "tokenizer.ggml.merges")) {
    const Json& m = array_of(g, "tokenizer.ggml.merges", file);
    for (size_t i = 0; i < m.size(); ++i)
      merges.push_back(checked_string(m[i], "tokenizer.ggml.merges", i, file));
  }
  const Json byte_level = {{"type", "ByteLevel"},
                           {"add_prefix_space", false},
                           {"trim_offsets", false},
                           {"use_regex", false}};
  Json tj = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", pre->nfc ? Json{{"type", "NFC"}} : Json(nullptr)},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"},
           {"pattern", {{"Regex", pre->regex}}},
           {"behavior", "Isolated"},
           {"invert", false}},
          byte_level}}}},
      {"post_processor", byte_level},
      {"decoder", byte_level},
      {"model",
       {{"type", "BPE"},
        {"vocab", vocab},
        {"merges", merges},
        {"byte_fallback", false},
        {"ignore_merges", pre_name == "llama-bpe"}}},
  };
  Json cfg = Json::object();
  auto token_of = [&](const char* key, const char* field) {
    if (!gguf_has(g, key)) return;
    const Json& id = gguf_value(g, key, file);
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<uint64_t>() >= tokens.size()) {
      throw Error(file + ": " + key + " is not a token id of the vocabulary");
    }
    cfg[field] = tokens[id.get<size_t>()];
  };
  token_of("tokenizer.ggml.eos_token_id", "eos_token");
  token_of("tokenizer.ggml.bos_token_id", "bos_token");
  if (add_bos) {
    if (!cfg.contains("bos_token")) {
      throw Error(file +
                  ": tokenizer.ggml.add_bos_token is true but tokenizer.ggml.bos_token_id "
                  "is missing");
    }
    cfg["add_bos_token"] = true;
  }
  if (gguf_has(g, "tokenizer.chat_template")) {
    const Json& t = gguf_value(g, "tokenizer.chat_template", file);
    cfg["chat_template"] = checked_string(t, "tokenizer.chat_template", 0, file);
  }
  return {tj.dump(), cfg.dump()};
}

}  // namespace bringup
