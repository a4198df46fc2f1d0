// config.json and generation_config.json, validated field by field.
#include "bringup/config.h"

#include <set>

#include "core/mapped_file.h"
#include "io/json_fields.h"

namespace bringup {

namespace {

int64_t bounded(const JsonFields& f, const char* key, int64_t value, int64_t lo, int64_t hi) {
  if (value < lo || value > hi) {
    f.fail(key, "is " + std::to_string(value) + "; expected " + std::to_string(lo) + ".." +
                    std::to_string(hi));
  }
  return value;
}

void check_rope_scaling(const JsonFields& f) {
  if (f.is_null("rope_scaling")) return;
  const Json& rs = f.value("rope_scaling");
  if (!rs.is_object()) f.fail("rope_scaling", "must be null or an object");
  std::string type = "default";
  for (const char* key : {"rope_type", "type"}) {
    if (rs.contains(key) && rs[key].is_string()) type = rs[key].get<std::string>();
  }
  if (type != "default") {
    f.fail("rope_scaling",
           "has type '" + type + "', which is not supported yet (only none or 'default')");
  }
}

}  // namespace

ModelConfig parse_model_config(const std::string& text, const std::string& source) {
  const Json j = parse_json(text, source);
  const JsonFields f(j, source);
  ModelConfig c;
  c.model_type = f.string("model_type");
  if (c.model_type.empty()) f.fail("model_type", "must not be empty");
  constexpr int64_t kMaxDim = int64_t{1} << 20;
  c.vocab_size = bounded(f, "vocab_size", f.integer("vocab_size"), 1, int64_t{1} << 24);
  c.hidden_size = bounded(f, "hidden_size", f.integer("hidden_size"), 1, kMaxDim);
  c.intermediate_size = bounded(f, "intermediate_size", f.integer("intermediate_size"), 1, kMaxDim);
  c.num_hidden_layers = bounded(f, "num_hidden_layers", f.integer("num_hidden_layers"), 1, 4096);
  c.num_attention_heads =
      bounded(f, "num_attention_heads", f.integer("num_attention_heads"), 1, 4096);
  c.num_key_value_heads =
      bounded(f, "num_key_value_heads",
              f.optional_integer("num_key_value_heads").value_or(c.num_attention_heads), 1,
              c.num_attention_heads);
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    f.fail("num_key_value_heads", "(" + std::to_string(c.num_key_value_heads) +
                                      ") must divide num_attention_heads (" +
                                      std::to_string(c.num_attention_heads) + ")");
  }
  if (auto hd = f.optional_integer("head_dim")) {
    c.head_dim = bounded(f, "head_dim", *hd, 2, 4096);
  } else {
    if (c.hidden_size % c.num_attention_heads != 0) {
      f.fail("hidden_size",
             "(" + std::to_string(c.hidden_size) +
                 ") is not divisible by num_attention_heads and no head_dim is given");
    }
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.head_dim % 2 != 0) {
    f.fail("head_dim", "is " + std::to_string(c.head_dim) + "; rotary embedding needs it even");
  }
  c.rms_norm_eps = f.optional_number("rms_norm_eps").value_or(1e-6);
  if (c.rms_norm_eps <= 0) f.fail("rms_norm_eps", "must be positive");
  c.rope_theta = f.optional_number("rope_theta").value_or(10000.0);
  if (c.rope_theta <= 1) f.fail("rope_theta", "must be greater than 1");
  check_rope_scaling(f);
  c.max_position_embeddings = bounded(f, "max_position_embeddings",
                                      f.integer("max_position_embeddings"), 1, int64_t{1} << 22);
  c.tie_word_embeddings = f.optional_boolean("tie_word_embeddings").value_or(false);
  c.use_sliding_window = f.optional_boolean("use_sliding_window").value_or(false);
  c.sliding_window = f.optional_integer("sliding_window").value_or(0);
  c.max_window_layers = f.optional_integer("max_window_layers").value_or(c.num_hidden_layers);
  if (c.use_sliding_window) {
    f.fail("use_sliding_window", "is true; sliding-window attention is not supported yet");
  }
  c.attention_bias = f.optional_boolean("attention_bias");
  c.mlp_bias = f.optional_boolean("mlp_bias").value_or(false);
  c.hidden_act = f.optional_string("hidden_act").value_or("silu");
  if (c.hidden_act != "silu") {
    f.fail("hidden_act", "is '" + c.hidden_act + "'; only 'silu' is supported");
  }
  c.torch_dtype = f.optional_string("torch_dtype").value_or("float32");
  static const std::set<std::string> kDtypes = {"float32", "bfloat16", "float16", "auto"};
  if (!kDtypes.count(c.torch_dtype)) {
    f.fail("torch_dtype", "is '" + c.torch_dtype + "'; expected float32, bfloat16 or float16");
  }
  return c;
}

ModelConfig load_model_config(const std::filesystem::path& file) {
  return parse_model_config(read_text_file(file), file.string());
}

GenerationConfig parse_generation_config(const std::string& text, const std::string& source) {
  const Json j = parse_json(text, source);
  const JsonFields f(j, source);
  GenerationConfig g;
  g.bos_token_id = f.optional_integer("bos_token_id");
  g.pad_token_id = f.optional_integer("pad_token_id");
  if (!f.is_null("eos_token_id")) {
    const Json& eos = f.value("eos_token_id");
    if (eos.is_array()) {
      for (const Json& e : eos) {
        if (!e.is_number_integer()) f.fail("eos_token_id", "must hold integers");
        g.eos_token_ids.push_back(e.get<int64_t>());
      }
    } else {
      g.eos_token_ids.push_back(f.integer("eos_token_id"));
    }
  }
  g.do_sample = f.optional_boolean("do_sample").value_or(false);
  g.temperature = f.optional_number("temperature").value_or(1.0);
  if (g.temperature < 0) f.fail("temperature", "must not be negative");
  g.top_k = f.optional_integer("top_k").value_or(50);
  if (g.top_k < 0) f.fail("top_k", "must not be negative");
  g.top_p = f.optional_number("top_p").value_or(1.0);
  if (g.top_p <= 0 || g.top_p > 1) f.fail("top_p", "must be in (0, 1]");
  g.min_p = f.optional_number("min_p").value_or(0.0);
  if (g.min_p < 0 || g.min_p > 1) f.fail("min_p", "must be in [0, 1]");
  g.repetition_penalty = f.optional_number("repetition_penalty").value_or(1.0);
  if (g.repetition_penalty <= 0) f.fail("repetition_penalty", "must be positive");
  g.max_new_tokens = f.optional_integer("max_new_tokens");
  return g;
}

GenerationConfig load_generation_config(const std::filesystem::path& file) {
  return parse_generation_config(read_text_file(file), file.string());
}

}  // namespace bringup
