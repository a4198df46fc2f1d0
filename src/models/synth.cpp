#include "models/synth.h"

#include "models/family.h"

#include <cmath>
#include <fstream>
#include <functional>
#include <map>

#include "bringup/error.h"
#include "core/dtype.h"
#include "io/json_fields.h"
#include "io/safetensors.h"

namespace fs = std::filesystem;

namespace bringup {

namespace {

uint64_t mix(uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Approximately standard normal (sum of four uniforms, rescaled), cheap enough for billions.
float normal(uint64_t stream, uint64_t i) {
  const uint64_t h = mix(stream ^ mix(i));
  float s = 0;
  for (int j = 0; j < 4; ++j) s += static_cast<float>((h >> (16 * j)) & 0xffff) * (1.0f / 65536.0f);
  return (s - 2.0f) * 1.7320508f;  // variance of the sum is 4/12
}

// What one tensor holds: element i of a tensor = value(i).
struct SynthTensor {
  SafetensorsSpec spec;
  std::function<float(uint64_t)> value;
};

std::vector<SynthTensor> plan(const SynthOptions& o) {
  const ModelConfig& c = o.config;
  const double h = static_cast<double>(c.hidden_size);
  std::vector<SynthTensor> out;
  uint64_t stream = mix(o.seed);
  auto add = [&](const std::string& name, std::vector<int64_t> shape,
                 std::function<float(uint64_t, uint64_t)> fn, int64_t layer) {
    const uint64_t s = stream = mix(stream + 1);
    const bool perturbed = o.perturb_layer >= 0 && layer == o.perturb_layer &&
                           o.perturb_scale != 0 && shape.size() == 2;
    const uint64_t ps = mix(s ^ 0x5eed);
    const double scale = o.perturb_scale;
    out.push_back({{name, o.dtype, std::move(shape)}, [fn, s, perturbed, ps, scale](uint64_t i) {
                     float v = fn(s, i);
                     if (perturbed) v *= static_cast<float>(1.0 + scale * normal(ps, i));
                     return v;
                   }});
  };
  auto gaussian = [](double std) {
    return [std](uint64_t s, uint64_t i) { return static_cast<float>(std * normal(s, i)); };
  };
  auto norm_weight = [](uint64_t s, uint64_t i) { return 1.0f + 0.1f * normal(s, i); };
  // Bias with a few large channels per head (Qwen2's k-bias outliers).
  auto outlier_bias = [hd = c.head_dim](double std, double outlier, int per_head) {
    return [=](uint64_t s, uint64_t i) {
      const uint64_t head = i / hd, lane = i % hd;
      for (int j = 0; j < per_head; ++j) {
        if (lane == mix(s ^ (head * 8 + j)) % hd) {
          return static_cast<float>((mix(s ^ i) & 1 ? 1 : -1) * outlier * (1 + 0.2 * j));
        }
      }
      return static_cast<float>(std * normal(s, i));
    };
  };

  // Every tensor of the family's list, drawn by its role.
  const double q = static_cast<double>(c.q_dim()), im = static_cast<double>(c.intermediate_size);
  const auto ends = [](const std::string& n, const char* suffix) {
    const std::string s(suffix);
    return n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0;
  };
  for (const ExpectedTensor& t : expected_tensors(c)) {
    const std::string& n = t.name;
    const int64_t layer =
        n.rfind("model.layers.", 0) == 0 ? std::stoll(n.substr(13, n.find('.', 13) - 13)) : -1;
    std::function<float(uint64_t, uint64_t)> fn;
    if (n == "model.embed_tokens.weight") {
      fn = gaussian(c.tie_word_embeddings ? 3.0 / std::sqrt(h) : 1.0);
    } else if (n == "lm_head.weight") {
      fn = gaussian(3.0 / std::sqrt(h));
    } else if (ends(n, "norm.weight")) {
      fn = norm_weight;
    } else if (ends(n, "q_proj.bias")) {
      fn = outlier_bias(0.25, 3.0, 1);
    } else if (ends(n, "k_proj.bias")) {
      fn = outlier_bias(0.25, 8.0, 1);
    } else if (ends(n, "v_proj.bias")) {
      fn = gaussian(0.2);
    } else if (ends(n, "q_proj.weight") || ends(n, "k_proj.weight")) {
      fn = gaussian(1.5 / std::sqrt(h));  // peaked attention
    } else if (ends(n, "o_proj.weight")) {
      fn = gaussian(1.0 / std::sqrt(q));
    } else if (ends(n, "down_proj.weight")) {
      fn = gaussian(1.0 / std::sqrt(im));
    } else {  // v, gate, up
      fn = gaussian(1.0 / std::sqrt(h));
    }
    add(n, t.shape, fn, layer);
  }
  return out;
}

size_t tensor_bytes(const SafetensorsSpec& s) {
  size_t n = storage_dtype_size(s.dtype);
  for (int64_t d : s.shape) n *= static_cast<size_t>(d);
  return n;
}

void fill(const SynthTensor& t, size_t first, std::byte* out, size_t bytes) {
  const size_t es = storage_dtype_size(t.spec.dtype);
  const uint64_t i0 = first / es;
  for (size_t j = 0; j < bytes / es; ++j) {
    const float v = t.value(i0 + j);
    if (t.spec.dtype == StorageDType::kF32) {
      std::memcpy(out + j * 4, &v, 4);
    } else {
      const uint16_t b = f32_to_bf16(v);
      std::memcpy(out + j * 2, &b, 2);
    }
  }
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p);
  out << text;
  if (!out) throw Error(p.string() + ": write failed");
}

// The published shapes (config.json of each Hugging Face checkpoint).
struct Preset {
  const char* name;
  int64_t vocab, hidden, intermediate, layers, heads, kv_heads, max_positions;
  bool tied;
};
constexpr Preset kPresets[] = {
    {"arcee-spark", 152064, 3584, 18944, 28, 28, 4, 32768, false},
    {"qwen2-7b", 152064, 3584, 18944, 28, 28, 4, 32768, false},
    {"qwen2-1.5b", 151936, 1536, 8960, 28, 12, 2, 131072, true},
    {"qwen2-0.5b", 151936, 896, 4864, 24, 14, 2, 131072, true},
};

// config.json's rope_scaling for a parsed one (null when unscaled).
Json rope_scaling_json(const RopeScaling& r) {
  if (r.type == "default") return nullptr;
  Json j = {{"rope_type", r.type}, {"factor", r.factor}};
  if (r.type != "linear") j["original_max_position_embeddings"] = r.original_context;
  if (r.type == "yarn") {
    if (r.attention_factor) j["attention_factor"] = *r.attention_factor;
    j["beta_fast"] = r.beta_fast;
    j["beta_slow"] = r.beta_slow;
  }
  if (r.type == "llama3") {
    j["low_freq_factor"] = r.low_freq_factor;
    j["high_freq_factor"] = r.high_freq_factor;
  }
  return j;
}

}  // namespace

std::vector<std::string> synth_preset_names() {
  std::vector<std::string> names;
  for (const Preset& p : kPresets) names.emplace_back(p.name);
  return names;
}

ModelConfig synth_preset(const std::string& name) {
  const Preset* p = nullptr;
  for (const Preset& candidate : kPresets) {
    if (name == candidate.name) p = &candidate;
  }
  if (!p) {
    std::string names;
    for (const auto& n : synth_preset_names()) names += (names.empty() ? "" : ", ") + n;
    throw Error("unknown synth preset '" + name + "' (expected one of: " + names + ")");
  }
  ModelConfig c;
  c.model_type = "qwen2";
  c.hidden_act = "silu";
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 1e6;
  c.torch_dtype = "bfloat16";
  c.vocab_size = p->vocab;
  c.hidden_size = p->hidden;
  c.intermediate_size = p->intermediate;
  c.num_hidden_layers = p->layers;
  c.num_attention_heads = p->heads;
  c.num_key_value_heads = p->kv_heads;
  c.max_position_embeddings = p->max_positions;
  c.tie_word_embeddings = p->tied;
  c.head_dim = c.hidden_size / c.num_attention_heads;
  c.sliding_window = c.max_position_embeddings;
  c.max_window_layers = c.num_hidden_layers;
  return c;
}

std::string model_config_json(const ModelConfig& c) {
  Json j = {{"architectures", {"Qwen2ForCausalLM"}},
            {"model_type", c.model_type},
            {"hidden_act", c.hidden_act},
            {"vocab_size", c.vocab_size},
            {"hidden_size", c.hidden_size},
            {"intermediate_size", c.intermediate_size},
            {"num_hidden_layers", c.num_hidden_layers},
            {"num_attention_heads", c.num_attention_heads},
            {"num_key_value_heads", c.num_key_value_heads},
            {"max_position_embeddings", c.max_position_embeddings},
            {"rope_theta", c.rope_theta},
            {"rms_norm_eps", c.rms_norm_eps},
            {"tie_word_embeddings", c.tie_word_embeddings},
            {"use_sliding_window", c.use_sliding_window},
            // Unstated: the whole context, as published Qwen2 configs state it.
            {"sliding_window", c.sliding_window < 0    ? Json(c.context_length())
                               : c.sliding_window == 0 ? Json(nullptr)
                                                       : Json(c.sliding_window)},
            {"max_window_layers", c.max_window_layers},
            {"rope_scaling", rope_scaling_json(c.rope_scaling)},
            {"torch_dtype", c.torch_dtype}};
  if (c.head_dim * c.num_attention_heads != c.hidden_size) j["head_dim"] = c.head_dim;
  return j.dump(2) + "\n";
}

size_t synth_weight_bytes(const SynthOptions& o) {
  size_t n = 0;
  for (const SynthTensor& t : plan(o)) n += tensor_bytes(t.spec);
  return n;
}

void write_synthetic_checkpoint(const SynthOptions& o, const fs::path& dir) {
  ModelConfig c = o.config;
  c.torch_dtype = o.dtype == StorageDType::kF32 ? "float32" : "bfloat16";
  // Validates the config the same way loading will.
  parse_model_config(model_config_json(c), "synth config");
  const std::vector<SynthTensor> tensors = plan(o);

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir.string() + ": cannot create directory: " + ec.message());
  size_t total = 0;
  for (const SynthTensor& t : tensors) total += tensor_bytes(t.spec);
  const fs::space_info space = fs::space(dir, ec);
  const size_t need = total + total / 100 + (size_t{1} << 20);
  if (!ec && space.available < need) {
    throw Error(dir.string() + ": not enough disk space for the checkpoint: need " +
                std::to_string(need >> 20) + " MiB, " + std::to_string(space.available >> 20) +
                " MiB available");
  }

  // Shards of at most shard_bytes (a tensor larger than that gets a shard of its own).
  std::vector<std::vector<size_t>> shards(1);
  size_t shard_size = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const size_t b = tensor_bytes(tensors[i].spec);
    if (o.shard_bytes && shard_size > 0 && shard_size + b > o.shard_bytes) {
      shards.emplace_back();
      shard_size = 0;
    }
    shards.back().push_back(i);
    shard_size += b;
  }
  const bool single = o.shard_bytes == 0;
  Json weight_map = Json::object();
  for (size_t s = 0; s < shards.size(); ++s) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
    const std::string file = single ? "model.safetensors" : name;
    std::vector<SafetensorsSpec> specs;
    for (size_t i : shards[s]) {
      specs.push_back(tensors[i].spec);
      weight_map[tensors[i].spec.name] = file;
    }
    write_safetensors(dir / file, specs, [&](size_t t, size_t first, std::byte* out, size_t n) {
      fill(tensors[shards[s][t]], first, out, n);
    });
  }
  if (!single) {
    const Json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    write_text(dir / "model.safetensors.index.json", index.dump(2) + "\n");
  } else {
    fs::remove(dir / "model.safetensors.index.json", ec);
  }
  write_text(dir / "config.json", model_config_json(c));
  write_text(
      dir / "generation_config.json",
      Json({{"bos_token_id", 151643}, {"eos_token_id", 151645}, {"do_sample", false}}).dump(2) +
          "\n");
}

}  // namespace bringup
