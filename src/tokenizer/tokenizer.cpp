// tokenizer.json as Hugging Face tokenizers runs it for Qwen2: added (special) tokens matched in
// the raw text, NFC normalisation (utf8proc), the Split pre-tokenizer's regex (PCRE2 with Unicode
// properties), the ByteLevel alphabet, BPE; decoding through the ByteLevel decoder.
#include "bringup/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "bringup/checkpoint.h"
#include "bringup/error.h"
#include "core/mapped_file.h"
#include "io/gguf.h"
#include "io/json_fields.h"
#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/utf8.h"

namespace fs = std::filesystem;

namespace bringup {

namespace {

// GPT-2's pre-tokenizer regex, used by ByteLevel when use_regex is true.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Hugging Face tokenizers compiles these patterns with Oniguruma, whose Unicode \s is exactly the
// White_Space property. PCRE2's \s also takes U+180E (MONGOLIAN VOWEL SEPARATOR, a format
// character since Unicode 6.3), which changes how " \u180e" splits; so \s and \S are spelled
// out as Oniguruma's set.
constexpr const char* kWhiteSpace =
    "\\t-\\r\\x20\\x85\\xA0\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{"
    "3000}";

std::string oniguruma_to_pcre2(const std::string& p, const std::string& source) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[++i];
      if (e == 's') {
        out += in_class ? kWhiteSpace : std::string("[") + kWhiteSpace + "]";
      } else if (e == 'S') {
        if (in_class) throw Error(source + ": pre_tokenizer regex uses \\S inside a class");
        out += std::string("[^") + kWhiteSpace + "]";
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];  // a leading ] is literal
      continue;
    }
    if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {  // [:alpha:]
      const size_t end = p.find(":]", i + 2);
      if (end != std::string::npos) {
        out += p.substr(i, end + 2 - i);
        i = end + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

class Regex {
 public:
  Regex(const std::string& onig_pattern, const std::string& source) {
    const std::string pattern = oniguruma_to_pcre2(onig_pattern, source);
    int err = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                          PCRE2_UTF | PCRE2_UCP, &err, &offset, nullptr);
    if (!code_) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw Error(source + ": pre_tokenizer regex does not compile at offset " +
                  std::to_string(offset) + ": " + reinterpret_cast<char*>(msg));
    }
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if it fails
  }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  ~Regex() { pcre2_code_free(code_); }

  // Calls piece(begin, end) for every match and every gap between matches ("Isolated").
  template <typename Fn>
  void split(std::string_view text, Fn&& piece) const {
    const std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
        pcre2_match_data_create_from_pattern(code_, nullptr), &pcre2_match_data_free);
    if (!md) throw Error("out of memory for a regex match");
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t pos = 0, gap = 0;
    while (pos < text.size()) {
      const int rc =
          pcre2_match(code_, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md.get(), nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {  // a match or depth limit: never split the rest silently some other way
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        throw Error("the pre_tokenizer regex failed on this text: " +
                    std::string(reinterpret_cast<char*>(msg)));
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
      if (ov[1] == ov[0]) {  // empty match: step over one character
        utf8::next(text, pos);
        continue;
      }
      if (ov[0] > gap) piece(gap, ov[0]);
      piece(ov[0], ov[1]);
      pos = gap = ov[1];
    }
    if (gap < text.size()) piece(gap, text.size());
  }

 private:
  pcre2_code* code_ = nullptr;
};

struct AddedToken {
  int32_t id;
  std::string content;
  bool special, lstrip, rstrip;
};

std::string token_string(const Json& v, const std::string& source, const char* field) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    return v["content"].get<std::string>();
  }
  throw Error(source + ": field '" + field + "' must be a string or an object with \"content\"");
}

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<uint8_t>(c) < 0x80; });
}

}  // namespace

struct Tokenizer::Impl {
  std::unique_ptr<Bpe> bpe;
  std::vector<std::string> id_to_token;  // "" for ids without a token
  std::vector<bool> special;
  std::vector<AddedToken> added;
  bool nfc = false;
  std::vector<std::unique_ptr<Regex>> splits;  // applied in order
  std::string chat_template, eos_token, bos_token;
  std::optional<int32_t> bos_to_add;  // add_bos_token: prepended by encode(text, true)

  void encode_plain(std::string_view text, std::vector<int32_t>& out) const;
};

void Tokenizer::Impl::encode_plain(std::string_view text, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  std::string normalized;
  if (nfc && !is_ascii(text)) {
    utf8proc_uint8_t* dst = nullptr;
    const utf8proc_ssize_t n =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                     static_cast<utf8proc_ssize_t>(text.size()), &dst,
                     static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    if (n < 0) throw Error(std::string("cannot normalize text: ") + utf8proc_errmsg(n));
    normalized.assign(reinterpret_cast<char*>(dst), static_cast<size_t>(n));
    std::free(dst);
    text = normalized;
  }
  // The pre-tokenizers split pieces further, one after the other.
  std::vector<std::pair<size_t, size_t>> pieces = {{0, text.size()}};
  for (const auto& re : splits) {
    std::vector<std::pair<size_t, size_t>> next;
    for (const auto& piece : pieces) {
      const size_t b = piece.first;
      re->split(text.substr(b, piece.second - b), [&](size_t pb, size_t pe) {
        next.push_back({b + pb, b + pe});
      });
    }
    pieces = std::move(next);
  }
  const ByteLevel& bl = byte_level();
  std::string mapped;
  for (const auto& [b, e] : pieces) {
    mapped.clear();
    for (size_t i = b; i < e; ++i) mapped += bl.encode(static_cast<uint8_t>(text[i]));
    bpe->encode(mapped, out);
  }
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::load(const fs::path& dir) {
  if (is_gguf_file(dir)) {
    const MappedFile file(dir);
    const auto [tokenizer_json, config] =
        gguf_tokenizer_files(parse_gguf(file.data(), file.size(), file.path()), file.path());
    return parse(tokenizer_json, config, dir.string());
  }
  return load_json_files(dir);
}

std::optional<Tokenizer> Tokenizer::load_if_present(const fs::path& dir) {
  if (is_gguf_file(dir)) {
    const MappedFile file(dir);
    const GgufFile g = parse_gguf(file.data(), file.size(), file.path());
    if (!gguf_has(g, "tokenizer.ggml.tokens")) return std::nullopt;
    const auto [tokenizer_json, config] = gguf_tokenizer_files(g, file.path());
    return parse(tokenizer_json, config, dir.string());
  }
  if (!fs::exists(dir / "tokenizer.json")) return std::nullopt;
  return load_json_files(dir);
}

Tokenizer Tokenizer::load_json_files(const fs::path& dir) {
  const fs::path path = dir / "tokenizer.json";
  if (!fs::exists(path)) throw Error(path.string() + ": no tokenizer.json in the checkpoint");
  const fs::path config_path = dir / "tokenizer_config.json";
  const std::string config = fs::exists(config_path) ? read_text_file(config_path) : "";
  return parse(read_text_file(path), config, dir.string());
}

Tokenizer Tokenizer::parse(std::string_view tokenizer_json, std::string_view tokenizer_config_json,
                           const std::string& dir) {
  const std::string source = (fs::path(dir) / "tokenizer.json").string();
  const Json j = parse_json(std::string(tokenizer_json), source);
  const JsonFields f(j, source);
  auto impl = std::make_unique<Impl>();

  // The BPE model.
  const JsonFields model(f.value("model"), source + ": model");
  const std::string type = model.optional_string("type").value_or("BPE");
  if (type != "BPE") model.fail("type", "is '" + type + "'; only BPE is supported");
  if (model.optional_boolean("byte_fallback").value_or(false)) {
    model.fail("byte_fallback", "is true; not supported");
  }
  const Json& vocab_json = model.value("vocab");
  if (!vocab_json.is_object()) model.fail("vocab", "must be an object of token -> id");
  std::unordered_map<std::string, int32_t> vocab;
  vocab.reserve(vocab_json.size());
  int64_t size = 0;
  for (const auto& [token, id] : vocab_json.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= kMaxTokenId) {
      model.fail("vocab", "maps '" + token + "' to something that is not a token id (0.." +
                              std::to_string(kMaxTokenId - 1) + ")");
    }
    vocab.emplace(token, static_cast<int32_t>(id.get<int64_t>()));
    size = std::max<int64_t>(size, id.get<int64_t>() + 1);
  }
  const Json& merges_json = model.value("merges");
  if (!merges_json.is_array()) model.fail("merges", "must be an array");
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(merges_json.size());
  for (const Json& m : merges_json) {
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
        model.fail("merges", "entry '" + s + "' is not two tokens separated by one space");
      }
      merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      model.fail("merges", "entries must be \"a b\" strings or [\"a\", \"b\"] pairs");
    }
  }
  for (int b = 0; b < 256; ++b) {
    if (!vocab.count(byte_level().encode(static_cast<uint8_t>(b)))) {
      model.fail("vocab", "lacks the byte-level token for byte " + std::to_string(b));
    }
  }
  const bool ignore_merges = model.optional_boolean("ignore_merges").value_or(false);

  // Added tokens.
  if (!f.is_null("added_tokens")) {
    const Json& added = f.value("added_tokens");
    if (!added.is_array()) f.fail("added_tokens", "must be an array");
    for (const Json& a : added) {
      const JsonFields af(a, source + ": added_tokens");
      const int64_t id = af.integer("id");  // checked before it narrows to int32
      if (id < 0 || id >= kMaxTokenId) {
        af.fail("id",
                "is " + std::to_string(id) + "; expected 0.." + std::to_string(kMaxTokenId - 1));
      }
      AddedToken t{static_cast<int32_t>(id), af.string("content"),
                   af.optional_boolean("special").value_or(false),
                   af.optional_boolean("lstrip").value_or(false),
                   af.optional_boolean("rstrip").value_or(false)};
      if (t.content.empty()) af.fail("content", "is empty for added token " + std::to_string(id));
      if (af.optional_boolean("single_word").value_or(false)) {
        af.fail("single_word", "is true for '" + t.content + "'; not supported");
      }
      if (af.optional_boolean("normalized").value_or(!t.special) && !t.special) {
        af.fail("normalized", "is true for '" + t.content + "'; not supported");
      }
      size = std::max<int64_t>(size, t.id + 1);
      impl->added.push_back(std::move(t));
    }
  }
  impl->id_to_token.assign(size, "");
  impl->special.assign(size, false);
  for (const auto& [token, id] : vocab) impl->id_to_token[id] = token;
  for (const AddedToken& t : impl->added) {
    impl->id_to_token[t.id] = t.content;
    impl->special[t.id] = t.special;
  }
  impl->bpe = std::make_unique<Bpe>(std::move(vocab), merges, ignore_merges, source);

  // Normalizer: none, NFC, or a Sequence of them.
  auto normalizer = [&](const Json& n, auto& self) -> void {
    if (n.is_null()) return;
    const JsonFields nf(n, source + ": normalizer");
    const std::string t = nf.string("type");
    if (t == "NFC") {
      impl->nfc = true;
    } else if (t == "Sequence") {
      for (const Json& inner : nf.value("normalizers")) self(inner, self);
    } else {
      nf.fail("type", "is '" + t + "'; only NFC is supported");
    }
  };
  if (f.has("normalizer")) normalizer(f.value("normalizer"), normalizer);

  // Pre-tokenizers: Split (Isolated) and ByteLevel, alone or in a Sequence.
  auto pre = [&](const Json& p, auto& self) -> void {
    if (p.is_null()) return;
    const JsonFields pf(p, source + ": pre_tokenizer");
    const std::string t = pf.string("type");
    if (t == "Sequence") {
      for (const Json& inner : pf.value("pretokenizers")) self(inner, self);
    } else if (t == "Split") {
      const std::string behavior = pf.optional_string("behavior").value_or("Isolated");
      if (behavior != "Isolated" || pf.optional_boolean("invert").value_or(false)) {
        pf.fail("behavior", "is '" + behavior + "'; only Isolated without invert is supported");
      }
      const JsonFields pat(pf.value("pattern"), source + ": pre_tokenizer pattern");
      if (pat.has("Regex")) {
        impl->splits.push_back(std::make_unique<Regex>(pat.string("Regex"), source));
      } else {
        // A literal string: quote it for PCRE2.
        impl->splits.push_back(
            std::make_unique<Regex>("\\Q" + pat.string("String") + "\\E", source));
      }
    } else if (t == "ByteLevel") {
      if (pf.optional_boolean("add_prefix_space").value_or(false)) {
        pf.fail("add_prefix_space", "is true; not supported");
      }
      if (pf.optional_boolean("use_regex").value_or(true)) {
        impl->splits.push_back(std::make_unique<Regex>(kGpt2Pattern, source));
      }
    } else {
      pf.fail("type", "is '" + t + "'; only Split and ByteLevel are supported");
    }
  };
  if (f.has("pre_tokenizer")) pre(f.value("pre_tokenizer"), pre);

  if (!f.is_null("decoder")) {
    const JsonFields df(f.value("decoder"), source + ": decoder");
    if (df.string("type") != "ByteLevel") df.fail("type", "must be ByteLevel");
  }
  if (!f.is_null("post_processor")) {
    const JsonFields pp(f.value("post_processor"), source + ": post_processor");
    if (pp.string("type") != "ByteLevel") {
      pp.fail("type",
              "is '" + pp.string("type") + "'; only ByteLevel (adds no tokens) is supported");
    }
  }

  if (!tokenizer_config_json.empty()) {
    const std::string csource = (fs::path(dir) / "tokenizer_config.json").string();
    const Json c = parse_json(std::string(tokenizer_config_json), csource);
    const JsonFields cf(c, csource);
    if (!cf.is_null("chat_template")) {
      const Json& tpl = cf.value("chat_template");
      if (tpl.is_string()) {
        impl->chat_template = tpl.get<std::string>();
      } else if (tpl.is_array()) {  // [{"name": "default", "template": "..."}, ...]
        for (const Json& named : tpl) {
          if (named.is_object() && named.value("name", "") == "default" &&
              named.contains("template") && named["template"].is_string()) {
            impl->chat_template = named["template"].get<std::string>();
          }
        }
      } else {
        cf.fail("chat_template", "must be a string");
      }
    }
    if (cf.has("eos_token")) impl->eos_token = token_string(c["eos_token"], csource, "eos_token");
    if (cf.has("bos_token")) impl->bos_token = token_string(c["bos_token"], csource, "bos_token");
    if (cf.optional_boolean("add_bos_token").value_or(false)) {
      // LlamaTokenizerFast's flag (and GGUF's tokenizer.ggml.add_bos_token): the BOS token
      // starts every text encoded with its special tokens.
      const auto it = std::find_if(impl->added.begin(), impl->added.end(), [&](const auto& a) {
        return !impl->bos_token.empty() && a.content == impl->bos_token;
      });
      if (it == impl->added.end()) {
        cf.fail("add_bos_token", "is true but bos_token names no added token of the vocabulary");
      }
      impl->bos_to_add = it->id;
    }
  }
  return Tokenizer(std::move(impl));
}

bool Tokenizer::adds_bos() const {
  return impl_->bos_to_add.has_value();
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  if (text.size() > kMaxEncodeBytes) {
    throw Error("text of " + std::to_string(text.size() >> 20) + " MiB exceeds the tokenizer's " +
                std::to_string(kMaxEncodeBytes >> 20) + " MiB limit per call (split it)");
  }
  if (const size_t bad = utf8::first_invalid(text); bad != std::string_view::npos) {
    throw Error("text is not valid UTF-8 (at byte " + std::to_string(bad) + ")");
  }
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special_tokens && impl_->bos_to_add) out.push_back(*impl_->bos_to_add);
  // Added tokens are matched in the raw text, leftmost first, longest among those at one place.
  // found[t]: the next occurrence of token t at or after pos (npos once there is none left).
  const std::vector<AddedToken>& added = impl_->added;
  std::vector<size_t> found(added.size(), 0);
  std::vector<bool> searched(added.size(), false);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t best_at = std::string_view::npos, best = 0;
    for (size_t t = 0; t < added.size(); ++t) {
      if (found[t] != std::string_view::npos && (!searched[t] || found[t] < pos)) {
        found[t] = text.find(added[t].content, pos);
        searched[t] = true;
      }
      if (found[t] == std::string_view::npos) continue;
      if (found[t] < best_at ||
          (found[t] == best_at && added[t].content.size() > added[best].content.size())) {
        best_at = found[t];
        best = t;
      }
    }
    if (best_at == std::string_view::npos) break;
    const AddedToken& tok = added[best];
    size_t plain_end = best_at, resume = best_at + tok.content.size();
    if (tok.lstrip) {
      while (plain_end > pos && std::isspace(static_cast<unsigned char>(text[plain_end - 1])))
        --plain_end;
    }
    if (tok.rstrip) {
      while (resume < text.size() && std::isspace(static_cast<unsigned char>(text[resume])))
        ++resume;
    }
    impl_->encode_plain(text.substr(pos, plain_end - pos), out);
    out.push_back(tok.id);
    pos = resume;
  }
  if (pos < text.size()) impl_->encode_plain(text.substr(pos), out);
  return out;
}

std::string Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return "";
  const std::string& token = impl_->id_to_token[id];
  // The ByteLevel decoder: every character back to its byte; a token with a character outside
  // the alphabet (an added token such as "<|im_end|>" maps to itself anyway) is kept as is.
  std::string bytes;
  const ByteLevel& bl = byte_level();
  for (size_t i = 0; i < token.size();) {
    const int b = bl.decode(utf8::next(token, i));
    if (b < 0) return token;
    bytes += static_cast<char>(b);
  }
  return bytes;
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size() || impl_->id_to_token[id].empty()) {
      throw Error("token id " + std::to_string(id) + " is outside the tokenizer's vocabulary (0.." +
                  std::to_string(vocab_size() - 1) + ")");
    }
    bytes += token_bytes(id);
  }
  return utf8::lossy(bytes);
}

int64_t Tokenizer::vocab_size() const {
  return static_cast<int64_t>(impl_->id_to_token.size());
}

std::optional<int32_t> Tokenizer::token_id(std::string_view token) const {
  for (const AddedToken& t : impl_->added) {
    if (t.content == token) return t.id;
  }
  const auto& v = impl_->bpe->vocab();
  if (auto it = v.find(std::string(token)); it != v.end()) return it->second;
  return std::nullopt;
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && impl_->special[id];
}

const std::string& Tokenizer::chat_template() const {
  return impl_->chat_template;
}
const std::string& Tokenizer::eos_token() const {
  return impl_->eos_token;
}
const std::string& Tokenizer::bos_token() const {
  return impl_->bos_token;
}

std::string StreamDecoder::push(int32_t id) {
  pending_ += tokenizer_->token_bytes(id);
  const size_t hold = utf8::incomplete_tail(pending_);
  std::string ready = utf8::lossy(std::string_view(pending_).substr(0, pending_.size() - hold));
  pending_.erase(0, pending_.size() - hold);
  return ready;
}

std::string StreamDecoder::flush() {
  std::string rest = utf8::lossy(pending_);
  pending_.clear();
  return rest;
}

}  // namespace bringup
