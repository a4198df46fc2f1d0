// config.json and generation_config.json, validated field by field.
#include "bringup/config.h"

#include <cmath>
#include <map>
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

// rope_scaling, with the keys transformers 4.49 reads for each type; any other key would change
// what the model computes in a way we do not, so it is refused by name.
RopeScaling parse_rope_scaling(const JsonFields& f, int64_t max_position_embeddings) {
  RopeScaling r;
  r.original_context = max_position_embeddings;
  if (!f.has("rope_scaling") || f.is_null("rope_scaling")) return r;
  const Json& rs = f.value("rope_scaling");
  if (!rs.is_object()) f.fail("rope_scaling", "must be null or an object");
  const auto fail = [&](const std::string& key, const std::string& what) {
    f.fail(("rope_scaling." + key).c_str(), what);
  };
  for (const char* key : {"rope_type", "type"}) {
    if (!rs.contains(key)) continue;
    if (!rs[key].is_string()) fail(key, "must be a string");
    r.type = rs[key].get<std::string>();
  }
  static const std::map<std::string, std::set<std::string>> kKeys = {
      {"default", {}},
      {"linear", {"factor"}},
      {"dynamic", {"factor", "original_max_position_embeddings"}},
      {"yarn",
       {"factor", "original_max_position_embeddings", "attention_factor", "beta_fast",
        "beta_slow"}},
      {"llama3",
       {"factor", "original_max_position_embeddings", "low_freq_factor", "high_freq_factor"}},
  };
  const auto known = kKeys.find(r.type);
  if (known == kKeys.end()) {
    fail(rs.contains("rope_type") ? "rope_type" : "type",
         "is '" + r.type + "'; supported: default, linear, dynamic, yarn, llama3");
  }
  for (const auto& [key, value] : rs.items()) {
    if (key != "type" && key != "rope_type" && !known->second.count(key)) {
      fail(key, "is not supported for rope type '" + r.type + "'");
    }
  }
  const auto number = [&](const char* key, bool required) -> std::optional<double> {
    if (!rs.contains(key) || rs[key].is_null()) {
      if (required) fail(key, "is required for rope type '" + r.type + "'");
      return std::nullopt;
    }
    if (!rs[key].is_number()) fail(key, "must be a number, not " + json_type_name(rs[key]));
    return rs[key].get<double>();
  };
  if (r.type == "default") return r;
  r.factor = *number("factor", true);
  if (!(r.factor >= 1) || r.factor > 1024) fail("factor", "must be in 1..1024");
  if (auto original = number("original_max_position_embeddings", r.type == "llama3")) {
    if (*original != std::floor(*original) || *original < 1 || *original > (int64_t{1} << 22)) {
      fail("original_max_position_embeddings", "must be a positive integer");
    }
    r.original_context = static_cast<int64_t>(*original);
  }
  if (r.type == "yarn") {
    r.attention_factor = number("attention_factor", false);
    if (r.attention_factor && *r.attention_factor <= 0)
      fail("attention_factor", "must be positive");
    r.beta_fast = number("beta_fast", false).value_or(32);
    r.beta_slow = number("beta_slow", false).value_or(1);
    if (!(r.beta_fast > 0 && r.beta_slow > 0)) fail("beta_fast", "and beta_slow must be positive");
  }
  if (r.type == "llama3") {
    r.low_freq_factor = *number("low_freq_factor", true);
    r.high_freq_factor = *number("high_freq_factor", true);
    if (!(r.low_freq_factor > 0 && r.high_freq_factor > r.low_freq_factor)) {
      fail("high_freq_factor", "must be greater than low_freq_factor, and both positive");
    }
  }
  return r;
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
  c.max_position_embeddings = bounded(f, "max_position_embeddings",
                                      f.integer("max_position_embeddings"), 1, int64_t{1} << 22);
  c.rope_scaling = parse_rope_scaling(f, c.max_position_embeddings);
  c.tie_word_embeddings = f.optional_boolean("tie_word_embeddings").value_or(false);
  c.use_sliding_window = f.optional_boolean("use_sliding_window").value_or(false);
  if (f.has("sliding_window")) {
    c.sliding_window = f.optional_integer("sliding_window").value_or(0);
    if (c.sliding_window < 0) f.fail("sliding_window", "must be positive or null");
  }
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

int64_t ModelConfig::context_length() const {
  if (rope_scaling.type == "default") return max_position_embeddings;
  const auto scaled = static_cast<int64_t>(rope_scaling.factor *
                                           static_cast<double>(rope_scaling.original_context));
  return std::max(max_position_embeddings, scaled);
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
