#include "io/gguf_export.h"

#include <cstring>
#include <map>

#include "bringup/error.h"
#include "core/ggml_quants.h"
#include "core/host_matrix.h"
#include "core/mapped_file.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"

namespace bringup {

namespace fs = std::filesystem;

namespace {

using W = GgufWriter;

// The tokenizer of tokenizer.json / tokenizer_config.json as tokenizer.ggml.* metadata.
void add_tokenizer(W& w, const fs::path& dir, const ModelConfig& c) {
  const std::string file = (dir / "tokenizer.json").string();
  const Json tj = parse_json(read_text_file(dir / "tokenizer.json"), file);
  Json cfg = Json::object();
  if (fs::exists(dir / "tokenizer_config.json")) {
    cfg = parse_json(read_text_file(dir / "tokenizer_config.json"),
                     (dir / "tokenizer_config.json").string());
  }
  if (!tj.contains("model") || !tj["model"].contains("vocab") ||
      !tj["model"]["vocab"].is_object()) {
    throw Error(file + ": model.vocab must be an object");
  }
  std::map<int64_t, std::string> by_id;
  std::map<int64_t, bool> special;  // added tokens: special or not
  for (const auto& [tok, id] : tj["model"]["vocab"].items()) {
    if (!id.is_number_integer()) throw Error(file + ": model.vocab ids must be integers");
    by_id[id.get<int64_t>()] = tok;
  }
  for (const Json& t : tj.value("added_tokens", Json::array())) {
    const int64_t id = t.at("id").get<int64_t>();
    by_id[id] = t.at("content").get<std::string>();
    special[id] = t.value("special", false);
  }
  const int64_t n = std::max<int64_t>(c.vocab_size, by_id.empty() ? 0 : by_id.rbegin()->first + 1);
  Json tokens = Json::array(), types = Json::array();
  for (int64_t i = 0; i < n; ++i) {
    auto it = by_id.find(i);
    if (it == by_id.end()) {
      tokens.push_back("[PAD" + std::to_string(i) + "]");
      types.push_back(5);  // UNUSED
      continue;
    }
    const std::string& t = it->second;
    tokens.push_back(t);
    if (!special.count(i)) {
      types.push_back(1);  // NORMAL
    } else {
      const bool looks_special =
          t.size() >= 4 && t.rfind("<|", 0) == 0 && t.substr(t.size() - 2) == "|>";
      types.push_back(special[i] || looks_special ? 3 : 4);  // CONTROL : USER_DEFINED
    }
  }
  Json merges = Json::array();
  for (const Json& m : tj["model"].value("merges", Json::array())) {
    if (m.is_string()) {
      merges.push_back(m);
    } else if (m.is_array() && m.size() == 2) {
      merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    }
  }
  w.set("tokenizer.ggml.model", W::kString, "gpt2");
  w.set("tokenizer.ggml.pre", W::kString, c.model_type == "qwen2" ? "qwen2" : "llama-bpe");
  w.set("tokenizer.ggml.tokens", W::kArray, tokens, W::kString);
  w.set("tokenizer.ggml.token_type", W::kArray, types, W::kI32);
  w.set("tokenizer.ggml.merges", W::kArray, merges, W::kString);
  auto id_of = [&](const char* field, const char* key) {
    if (!cfg.contains(field)) return;
    Json name = cfg[field];
    if (name.is_object()) name = name.value("content", Json());
    if (!name.is_string()) return;
    for (const auto& [id, tok] : by_id) {
      if (tok == name.get<std::string>()) w.set(key, W::kU32, static_cast<uint64_t>(id));
    }
  };
  id_of("eos_token", "tokenizer.ggml.eos_token_id");
  id_of("bos_token", "tokenizer.ggml.bos_token_id");
  id_of("pad_token", "tokenizer.ggml.padding_token_id");
  w.set("tokenizer.ggml.add_bos_token", W::kBool, cfg.value("add_bos_token", false));
  if (cfg.contains("chat_template") && cfg["chat_template"].is_string()) {
    w.set("tokenizer.chat_template", W::kString, cfg["chat_template"]);
  }
}

std::vector<std::byte> encode_rows(const TensorView& t, StorageDType type) {
  const HostMatrix m = HostMatrix::of(t);
  std::vector<float> row(static_cast<size_t>(m.cols));
  std::vector<std::byte> out(storage_bytes(type, m.rows * m.cols));
  const size_t row_bytes = storage_bytes(type, m.cols);
  for (int64_t r = 0; r < m.rows; ++r) {
    m.row(r, row.data());
    std::byte* dst = out.data() + r * row_bytes;
    for (int64_t i = 0; i < m.cols; ++i) {
      if (type == StorageDType::kF32) {
        std::memcpy(dst + 4 * i, &row[i], 4);
      } else if (type == StorageDType::kF16 || type == StorageDType::kBF16) {
        const uint16_t h = type == StorageDType::kF16 ? f32_to_f16(row[i]) : f32_to_bf16(row[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
    }
    if (can_quantize_ggml(type)) quantize_ggml(type, row.data(), m.cols, dst);
  }
  return out;
}

}  // namespace

void export_gguf(const fs::path& model_dir, StorageDType type, const fs::path& out) {
  if (type != StorageDType::kF32 && type != StorageDType::kF16 && type != StorageDType::kBF16 &&
      type != StorageDType::kQ8_0 && type != StorageDType::kQ4_K && type != StorageDType::kQ6_K) {
    throw Error("--type must be f32, f16, bf16, q8_0, q4_k or q6_k");
  }
  if (is_gguf_file(model_dir)) throw Error("--model: give a Hugging Face checkpoint directory");
  const Checkpoint ck = Checkpoint::open(model_dir);
  const ModelConfig& c = ck.config();
  const std::string a = c.model_type;
  if (a != "qwen2" && a != "llama") {
    throw Error(model_dir.string() + ": model_type '" + a + "' has no GGUF writer here");
  }
  W w;
  w.set("general.architecture", W::kString, a);
  w.set("general.name", W::kString, ck.name());
  // llama_ftype: ALL_F32, MOSTLY_F16, MOSTLY_Q8_0, MOSTLY_Q4_K_S (every matrix Q4_K, as
  // llama-quantize --pure writes), MOSTLY_Q6_K, MOSTLY_BF16.
  w.set("general.file_type", W::kU32,
        type == StorageDType::kF32    ? 0u
        : type == StorageDType::kF16  ? 1u
        : type == StorageDType::kQ8_0 ? 7u
        : type == StorageDType::kQ4_K ? 14u
        : type == StorageDType::kQ6_K ? 18u
                                      : 32u);
  const auto u32 = [&](const std::string& k, int64_t v) { w.set(a + "." + k, W::kU32, v); };
  u32("context_length", c.max_position_embeddings);
  u32("embedding_length", c.hidden_size);
  u32("block_count", c.num_hidden_layers);
  u32("feed_forward_length", c.intermediate_size);
  u32("attention.head_count", c.num_attention_heads);
  u32("attention.head_count_kv", c.num_key_value_heads);
  u32("vocab_size", c.vocab_size);
  if (c.head_dim * c.num_attention_heads != c.hidden_size) {
    u32("attention.key_length", c.head_dim);
    u32("attention.value_length", c.head_dim);
  }
  u32("rope.dimension_count", c.head_dim);
  w.set(a + ".attention.layer_norm_rms_epsilon", W::kF32, c.rms_norm_eps);
  w.set(a + ".rope.freq_base", W::kF32, c.rope_theta);
  const RopeScaling& r = c.rope_scaling;
  if (r.type == "linear" || r.type == "yarn") {
    w.set(a + ".rope.scaling.type", W::kString, r.type);
    w.set(a + ".rope.scaling.factor", W::kF32, r.factor);
    u32("rope.scaling.original_context_length", r.original_context);
  } else if (r.type != "default") {
    throw Error(model_dir.string() + ": rope_scaling type '" + r.type +
                "' cannot be written to GGUF by bringup yet");
  }
  if (c.use_sliding_window) {
    throw Error(model_dir.string() + ": use_sliding_window has no GGUF key for " + a);
  }
  if (fs::exists(model_dir / "tokenizer.json")) {
    add_tokenizer(w, model_dir, c);
  } else {
    const GenerationConfig& g = ck.generation_config();
    if (g.bos_token_id) w.set("tokenizer.ggml.bos_token_id", W::kU32, *g.bos_token_id);
    if (!g.eos_token_ids.empty()) w.set("tokenizer.ggml.eos_token_id", W::kU32, g.eos_token_ids[0]);
  }

  for (const auto& [name, t] : ck.tensors()) {
    if (name == "lm_head.weight" && c.tie_word_embeddings) continue;
    const std::string g = gguf_tensor_name(name);
    if (g.empty()) throw Error(t.file + ": tensor '" + name + "' has no GGUF name");
    const bool matrix = t.shape.size() == 2;
    // Vectors stay F32. A matrix whose rows are not whole blocks takes llama-quantize's
    // fallback (Q4_K -> Q5_0, Q6_K -> Q8_0 when rows are not whole 256-value super-blocks), and
    // F16 when even that does not fit, as llama.cpp's converter does.
    StorageDType as = matrix ? type : StorageDType::kF32;
    if (matrix && t.shape[1] % storage_block_elems(as) != 0) {
      if (as == StorageDType::kQ4_K) as = StorageDType::kQ5_0;
      if (as == StorageDType::kQ6_K) as = StorageDType::kQ8_0;
    }
    if (matrix && t.shape[1] % storage_block_elems(as) != 0) as = StorageDType::kF16;
    std::vector<std::byte> bytes = encode_rows(t, as);
    if (a == "llama" && rope_permuted(g)) {
      const bool is_q = g.find("attn_q") != std::string::npos;
      bytes = permute_rope_rows(
          bytes.data(), t.shape[0], storage_bytes(as, matrix ? t.shape[1] : 1),
          is_q ? c.num_attention_heads : c.num_key_value_heads, false, "tensor '" + name + "'");
    }
    std::vector<int64_t> ne(t.shape.rbegin(), t.shape.rend());
    w.add_tensor(g, std::move(ne), as, std::move(bytes));
  }
  w.write(out);
}

}  // namespace bringup
