// A GGUF file opened as a Checkpoint, following llama.cpp's conventions (convert_hf_to_gguf.py):
// the `<arch>.*` hyperparameters become a config.json, tokenizer.ggml.* ids a
// generation_config.json, and the tensors (token_embd, blk.N.attn_q, ..., output) take their
// Hugging Face names and shapes. llama.cpp stores the q and k projections of `llama` models with
// the rows of each head permuted for its interleaved RoPE; they are permuted back here (a copy of
// just those rows), so the model code sees a Hugging Face checkpoint whatever the file.
#include <cstring>
#include <fstream>

#include "bringup/checkpoint.h"
#include "bringup/error.h"
#include "core/mapped_file.h"
#include "io/gguf.h"

namespace bringup {

namespace fs = std::filesystem;

namespace {

const char* const kArchitectures[] = {"qwen2", "llama"};

// JSON number of a metadata value that must be numeric.
Json number(const GgufFile& g, const std::string& key, const std::string& file) {
  const Json& v = gguf_value(g, key, file);
  if (!v.is_number()) throw Error(file + ": metadata '" + key + "' must be a number");
  return v;
}

// The config.json a GGUF file's metadata stands for.
Json config_json(const GgufFile& g, const std::string& file, const std::string& arch,
                 const std::vector<GgufTensor>& tensors) {
  auto key = [&](const char* k) { return arch + "." + k; };
  Json c = {{"model_type", arch}, {"hidden_act", "silu"}};
  c["hidden_size"] = number(g, key("embedding_length"), file);
  c["intermediate_size"] = number(g, key("feed_forward_length"), file);
  c["num_hidden_layers"] = number(g, key("block_count"), file);
  c["num_attention_heads"] = number(g, key("attention.head_count"), file);
  c["num_key_value_heads"] = gguf_has(g, key("attention.head_count_kv"))
                                 ? number(g, key("attention.head_count_kv"), file)
                                 : c["num_attention_heads"];
  c["max_position_embeddings"] = number(g, key("context_length"), file);
  c["rms_norm_eps"] = number(g, key("attention.layer_norm_rms_epsilon"), file);
  c["rope_theta"] =
      gguf_has(g, key("rope.freq_base")) ? number(g, key("rope.freq_base"), file) : Json(10000.0);
  if (gguf_has(g, key("attention.key_length"))) {
    c["head_dim"] = number(g, key("attention.key_length"), file);
  }
  bool has_output = false, has_q_bias = false;
  int64_t vocab = -1;
  for (const GgufTensor& t : tensors) {
    if (t.name == "output.weight") has_output = true;
    if (t.name == "blk.0.attn_q.bias") has_q_bias = true;
    if (t.name == "token_embd.weight" && t.ne.size() == 2) vocab = t.ne[1];
  }
  if (gguf_has(g, key("vocab_size"))) {
    c["vocab_size"] = number(g, key("vocab_size"), file);
  } else if (vocab > 0) {
    c["vocab_size"] = vocab;
  } else {
    throw Error(file + ": no " + key("vocab_size") + " and no 2-D token_embd.weight");
  }
  c["tie_word_embeddings"] = !has_output;
  if (arch == "llama") c["attention_bias"] = has_q_bias;
  if (gguf_has(g, key("rope.scaling.type"))) {
    const Json& type = gguf_value(g, key("rope.scaling.type"), file);
    if (!type.is_string())
      throw Error(file + ": metadata '" + key("rope.scaling.type") + "' must be a string");
    const std::string t = type.get<std::string>();
    if (t == "linear" || t == "yarn") {
      Json r = {{"type", t}, {"factor", number(g, key("rope.scaling.factor"), file)}};
      if (gguf_has(g, key("rope.scaling.original_context_length"))) {
        r["original_max_position_embeddings"] =
            number(g, key("rope.scaling.original_context_length"), file);
      }
      c["rope_scaling"] = r;
    } else if (t != "none") {
      throw Error(file + ": metadata '" + key("rope.scaling.type") + "' is '" + t +
                  "' (bringup reads none, linear and yarn)");
    }
  }
  return c;
}

Json generation_json(const GgufFile& g, const std::string& file) {
  Json j = Json::object();
  auto id = [&](const char* k, const char* field) {
    if (gguf_has(g, k)) j[field] = number(g, k, file);
  };
  id("tokenizer.ggml.bos_token_id", "bos_token_id");
  id("tokenizer.ggml.eos_token_id", "eos_token_id");
  id("tokenizer.ggml.padding_token_id", "pad_token_id");
  return j;
}

}  // namespace

bool is_gguf_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  std::ifstream f(path, std::ios::binary);
  char magic[4] = {};
  f.read(magic, 4);
  return f.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

ModelConfig gguf_model_config(const GgufFile& g, const std::string& file) {
  const Json& arch_json = gguf_value(g, "general.architecture", file);
  if (!arch_json.is_string()) throw Error(file + ": general.architecture must be a string");
  const std::string arch = arch_json.get<std::string>();
  // Checked before it goes into JSON text: only these (valid UTF-8) names get that far.
  if (std::find(std::begin(kArchitectures), std::end(kArchitectures), arch) ==
      std::end(kArchitectures)) {
    throw Error(file + ": general.architecture is '" + arch +
                "'; bringup reads qwen2 and llama GGUF files");
  }
  return parse_model_config(config_json(g, file, arch, g.tensors).dump(), file);
}

ModelConfig load_checkpoint_config(const fs::path& path) {
  if (!is_gguf_file(path)) return load_model_config(path / "config.json");
  const MappedFile file(path);
  return gguf_model_config(parse_gguf(file.data(), file.size(), file.path()), file.path());
}

Checkpoint Checkpoint::open_gguf(const fs::path& path) {
  auto file = std::make_unique<MappedFile>(path);
  const std::string where = file->path();
  const GgufFile g = parse_gguf(file->data(), file->size(), where);
  Checkpoint ck;
  ck.dir_ = path;
  ck.label_ = path.stem().string();
  ck.config_ = gguf_model_config(g, where);
  const std::string& arch = ck.config_.model_type;
  ck.generation_ = parse_generation_config(generation_json(g, where).dump(), where);

  for (const GgufTensor& t : g.tensors) {
    const std::string hf = hf_tensor_name(t.name);
    if (hf.empty()) {
      throw Error(
          where + ": tensor '" + t.name + "' is not one bringup knows for " + arch +
          (t.name == "rope_freqs.weight" ? " (llama3 RoPE factors: not supported yet)" : ""));
    }
    if (t.ne.size() > 2) throw Error(where + ": tensor '" + t.name + "' must be 1-D or 2-D");
    TensorView v;
    v.name = hf;
    v.dtype = t.dtype;
    v.shape.assign(t.ne.rbegin(), t.ne.rend());  // [rows, cols]
    v.data = file->data() + t.offset;
    v.bytes = t.bytes;
    v.file = where;
    if (arch == "llama" && rope_permuted(t.name)) {
      const bool is_q = t.name.find("attn_q") != std::string::npos;
      std::vector<std::byte> out = permute_rope_rows(
          v.data, v.shape[0], storage_bytes(t.dtype, v.shape.size() == 2 ? v.shape[1] : 1),
          is_q ? ck.config_.num_attention_heads : ck.config_.num_key_value_heads, true,
          where + ": tensor '" + t.name + "'");
      ck.owned_.push_back(std::move(out));
      v.data = ck.owned_.back().data();
    }
    const std::string name = v.name;
    ck.tensors_.emplace(name, std::move(v));
  }
  ck.files_.push_back(std::move(file));
  return ck;
}

}  // namespace bringup
