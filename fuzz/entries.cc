#include "entries.h"

#include <utf8proc.h>

#include <cstdlib>
#include <map>
#include <string>

#include "bringup/checkpoint.h"
#include "bringup/config.h"
#include "bringup/error.h"
#include "bringup/tokenizer.h"
#include "chat/jinja.h"
#include "core/host_matrix.h"
#include "eval/reference.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "models/family.h"
#include "server/openai.h"
#include "tokenizer/gguf_vocab.h"

namespace bringup::fuzz {

namespace {

std::string text_of(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// The shape of the seed corpus (fuzz/corpus/safetensors, written by make_seeds.py).
ModelConfig tiny() {
  return parse_model_config(
      R"({"model_type": "qwen2", "vocab_size": 8, "hidden_size": 4, "intermediate_size": 4,
          "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
          "max_position_embeddings": 16, "tie_word_embeddings": true})",
      "fuzz config");
}

std::string nfc(const std::string& s) {
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(
      reinterpret_cast<const utf8proc_uint8_t*>(s.data()), static_cast<utf8proc_ssize_t>(s.size()),
      &out, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) return s;
  std::string r(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  std::free(out);
  return r;
}

}  // namespace

void gguf(const uint8_t* data, size_t size) {
  try {
    const auto* bytes = reinterpret_cast<const std::byte*>(data);
    const GgufFile g = parse_gguf(bytes, size, "fuzz.gguf");
    std::vector<float> row;
    for (const GgufTensor& t : g.tensors) {
      // The first and last rows: the offsets and sizes the reader checked are inside the input.
      if (t.ne[0] > (int64_t{1} << 20)) continue;
      row.resize(static_cast<size_t>(t.ne[0]));
      convert_to_f32(t.dtype, bytes + t.offset, t.ne[0], row.data());
      const size_t row_bytes = storage_bytes(t.dtype, t.ne[0]);
      convert_to_f32(t.dtype, bytes + t.offset + t.bytes - row_bytes, t.ne[0], row.data());
    }
    try {
      (void)gguf_model_config(g, "fuzz.gguf");
    } catch (const Error&) {
    }
    if (gguf_has(g, "tokenizer.ggml.tokens")) {
      const auto [tj, cfg] = gguf_tokenizer_files(g, "fuzz.gguf");
      const Tokenizer tok = Tokenizer::parse(tj, cfg, "fuzz");
      (void)tok.decode(tok.encode("Hello, world! 123"));
    }
  } catch (const Error&) {
  }
}

void safetensors(const uint8_t* data, size_t size) {
  static const ModelConfig config = tiny();
  try {
    const auto* bytes = reinterpret_cast<const std::byte*>(data);
    std::map<std::string, TensorView> tensors;
    for (auto& e : parse_safetensors(bytes, size, "fuzz.safetensors")) {
      TensorView v{e.name, e.dtype, e.shape, bytes + e.offset, e.bytes, "fuzz.safetensors"};
      // Reading the first and last element proves the offsets point inside the input.
      if (v.numel() > 0) (void)(v.at(0) + v.at(v.numel() - 1));
      tensors.emplace(e.name, std::move(v));
    }
    check_tensors(expected_tensors(config), tensors, "fuzz");
  } catch (const Error&) {
  }
}

void config(const uint8_t* data, size_t size) {
  const std::string input = text_of(data, size);
  const size_t nul = input.find('\0');
  try {
    parse_model_config(input.substr(0, nul), "config.json");
  } catch (const Error&) {
  }
  if (nul == std::string::npos) return;
  try {
    parse_generation_config(input.substr(nul + 1), "generation_config.json");
  } catch (const Error&) {
  }
}

void tokenizer_load(const uint8_t* data, size_t size) {
  const std::string input = text_of(data, size);
  const size_t nul = input.find('\0');
  try {
    const Tokenizer t = Tokenizer::parse(
        input.substr(0, nul), nul == std::string::npos ? "" : input.substr(nul + 1), "fuzz");
    t.decode(t.encode("Hello world, 你好 😀 don't\n\n  x"));
  } catch (const Error&) {
  }
}

void tokenizer_encode(const uint8_t* data, size_t size) {
  static const Tokenizer tokenizer = Tokenizer::load(BRINGUP_TOKENIZER_DIR);
  const std::string text = text_of(data, size);
  std::vector<int32_t> ids;
  try {
    ids = tokenizer.encode(text);
  } catch (const Error&) {
    return;  // invalid UTF-8
  }
  // Special tokens are matched before normalisation, so the whole-text NFC is comparable only
  // without them.
  const std::string back = tokenizer.decode(ids);
  if (text.find("<|") == std::string::npos && back != nfc(text)) std::abort();
}

void chat_template(const uint8_t* data, size_t size) {
  using jinja::Value;
  static const Value context = [] {
    Value v = Value(jinja::Dict{});
    v.set("messages", Value::from_json(nlohmann::json::parse(
                          R"([{"role": "system", "content": "Be brief."},
                              {"role": "user", "content": "Hi <b>\n"},
                              {"role": "assistant", "content": "Hello!",
                               "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]}])")));
    v.set("add_generation_prompt", Value(true));
    v.set("eos_token", Value("<|im_end|>"));
    return v;
  }();
  jinja::Limits limits;
  limits.max_output_bytes = size_t{1} << 20;
  limits.max_loop_iterations = 100000;
  try {
    const jinja::Template t(std::string_view(reinterpret_cast<const char*>(data), size), limits);
    t.render(context);
  } catch (const Error&) {
  }
}

void chat_template_parse(const uint8_t* data, size_t size) {
  try {
    const jinja::Template t(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const Error&) {
  }
}

void reference(const uint8_t* data, size_t size) {
  try {
    const Reference r = parse_reference(text_of(data, size), "reference.json");
    check_reference_vocab(r, 4096, "reference.json");
  } catch (const Error&) {
  }
}

void openai_request(const uint8_t* data, size_t size) {
  static const Tokenizer tokenizer = Tokenizer::load(BRINGUP_TOKENIZER_DIR);
  if (size == 0) return;
  server::ServedModel m;
  m.id = "fuzz";
  m.tokenizer = &tokenizer;
  m.max_seq_len = 256;
  m.vocab_size = tokenizer.vocab_size();
  const auto endpoint = data[0] == 'c' ? server::Endpoint::kChat : server::Endpoint::kCompletion;
  server::ParsedRequest r;
  try {
    r = server::parse_request(endpoint, text_of(data + 1, size - 1), m);
  } catch (const server::ApiError& e) {
    (void)server::to_text(e.body());
    return;
  }
  // A reply of the prompt's own ids, so token bytes of every kind reach the JSON writers.
  std::vector<server::ChoiceResult> choices(static_cast<size_t>(r.generation.n));
  for (server::ChoiceResult& c : choices) {
    for (size_t i = 0; i < r.generation.prompt.size() && i < 8; ++i) {
      GenerationEvent e;
      e.token = r.generation.prompt[i];
      e.piece = tokenizer.token_bytes(e.token);
      e.top = {{e.token, -0.5f}};
      c.text += e.piece;
      c.events.push_back(e);
    }
    c.finish = FinishReason::kLength;
  }
  (void)server::to_text(server::completion_response(r, m, "x", 0, choices));
  if (!choices[0].events.empty()) {
    (void)server::to_text(server::chunk_token(r, m, "x", 0, choices[0].events[0]));
  }
}

}  // namespace bringup::fuzz
