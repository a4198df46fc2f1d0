#include "models/memory_plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "bringup/error.h"
#include "kernels/cpu/packed_weight.h"
#include "models/activations.h"
#include "models/family.h"
#include "models/precision_policy.h"
#include "runtime/kv_cache.h"

namespace bringup {

namespace {

MemoryPlan plan(const ModelConfig& c, const ModelOptions& o, const Device& dev, size_t available,
                size_t tokenizer_bytes, const Checkpoint* ck) {
  const WeightPolicy pol = weight_policy(o.precision);
  if (pol.native && !ck) {
    throw Error(
        "the native precision policy takes each weight's format from the checkpoint: "
        "plan it from the checkpoint");
  }
  const int64_t h = c.hidden_size, q = c.q_dim(), kv = c.kv_dim(), im = c.intermediate_size;
  const int64_t layers = c.num_hidden_layers;
  MemoryPlan p;
  p.available = available;
  p.tokenizer_bytes = tokenizer_bytes;
  bool block_float = false;
  // The format of a weight stacked from the named tensors, as load_weights chooses it.
  auto format_of = [&](WeightFormat group, std::initializer_list<std::string> names) {
    if (!pol.native) return group;
    std::vector<HostMatrix> parts;
    for (const std::string& n : names) parts.push_back(HostMatrix::of(ck->tensor(n)));
    return device_format(pol, group, parts);
  };
  // One line per weight group, its copies (layers) possibly in different formats.
  auto add = [&](const std::string& name, const std::vector<WeightFormat>& formats,
                 std::vector<int64_t> rows, int64_t k) {
    size_t bytes = 0;
    std::string names;
    for (WeightFormat f : formats) {
      bytes += cpu::packed_bytes(f, rows, k);
      block_float = block_float || f == WeightFormat::kBfp8 || f == WeightFormat::kBfp4;
      const std::string n(weight_format_name(f));
      if (("+" + names + "+").find("+" + n + "+") == std::string::npos) {
        names += (names.empty() ? "" : "+") + n;
      }
    }
    p.weights.push_back({name, names, bytes});
    p.weight_bytes += bytes;
  };
  add("embedding [" + std::to_string(c.vocab_size) + " x " + std::to_string(h) + "]",
      {format_of(pol.embedding, {"model.embed_tokens.weight"})}, {c.vocab_size}, h);
  if (!c.tie_word_embeddings) {
    add("lm_head", {format_of(pol.lm_head, {"lm_head.weight"})}, {c.vocab_size}, h);
  } else if (pol.lm_head != pol.embedding) {
    add("lm_head", {format_of(pol.lm_head, {"model.embed_tokens.weight"})}, {c.vocab_size}, h);
  } else {
    p.weights.push_back({"lm_head (tied to the embedding)", "-", 0});
  }
  std::vector<WeightFormat> qkv, o_proj, gate_up, down;
  const FamilySpec* family = pol.native ? &family_of(c, ck->dir().string()) : nullptr;
  for (int64_t l = 0; l < layers; ++l) {
    if (!family) {
      qkv.push_back(pol.attention);
      o_proj.push_back(pol.attention);
      gate_up.push_back(pol.gate_up);
      down.push_back(pol.down);
      continue;
    }
    const LayerTensorNames n = layer_tensor_names(*family, l);
    qkv.push_back(format_of(pol.attention, {n.q, n.k, n.v}));
    o_proj.push_back(format_of(pol.attention, {n.o}));
    gate_up.push_back(format_of(pol.gate_up, {n.gate, n.up}));
    down.push_back(format_of(pol.down, {n.down}));
  }
  const std::string per = " (" + std::to_string(layers) + " layers)";
  add("attention q/k/v" + per, qkv, {q, kv, kv}, h);
  add("attention o" + per, o_proj, {h}, q);
  add("mlp gate/up" + per, gate_up, {im, im}, h);
  add("mlp down" + per, down, {h}, im);
  size_t vector_elems = 0;  // norms and biases: the 1-D tensors of the family's list
  for (const ExpectedTensor& t : expected_tensors(c)) {
    if (t.shape.size() == 1) vector_elems += static_cast<size_t>(t.shape[0]);
  }
  const size_t vector_bytes = vector_elems * (pol.vectors_bf16 ? 2 : 4);
  p.weights.push_back({"norms and biases", pol.vectors_bf16 ? "bf16" : "fp32", vector_bytes});
  p.weight_bytes += vector_bytes;
  p.parameters = static_cast<size_t>(c.vocab_size * h * (c.tie_word_embeddings ? 1 : 2) +
                                     layers * (h * (q + 2 * kv) + q * h + 3 * h * im));

  // Working memory: the activations the model allocates, the scratch the device's kernels take.
  const int64_t rows = max_step_rows(o);
  p.activation_bytes = activation_bytes(c, rows, max_logit_rows(o));
  p.host_logits_bytes = static_cast<size_t>(max_logit_rows(o) * c.vocab_size) * sizeof(float);
  StepShape step;
  step.rows = rows;
  step.max_inputs = std::max({h, q, im});
  step.q_heads = c.num_attention_heads;
  step.kv_heads = c.num_key_value_heads;
  step.head_dim = c.head_dim;
  step.block_float = block_float;
  p.runtime_bytes = size_t{24} << 20;

  // The KV pool: the budget asked for, or what fits beside everything else.
  KvCacheShape shape = kv_cache_shape(c, o, cache_dtype(o.precision, o.kv_precision));
  step.max_seq_len = shape.max_seq_len;
  p.workspace_bytes = dev.workspace_bytes(step);
  p.max_seq_len = shape.max_seq_len;
  p.kv_bytes_per_token = shape.bytes_per_position();
  if (o.kv_budget_tokens == 0 && available > 0) {
    p.kv_budget_fitted = true;
    const int64_t fitted = static_cast<int64_t>(
        std::min<size_t>(p.kv_room() / p.kv_bytes_per_token, kMaxKvBudgetTokens));
    const int64_t whole = fitted / shape.block_size * shape.block_size;
    shape.budget_tokens = std::max(shape.budget_tokens, whole);
  }
  p.kv_budget_tokens = shape.budget_tokens;
  p.kv_cache_bytes = shape.bytes();
  return p;
}

}  // namespace

MemoryPlan plan_memory(const ModelConfig& c, const ModelOptions& o, const Device& dev,
                       size_t available, size_t tokenizer_bytes) {
  return plan(c, o, dev, available, tokenizer_bytes, nullptr);
}

MemoryPlan plan_memory(const Checkpoint& ck, const ModelOptions& o, const Device& dev,
                       size_t available) {
  return plan(ck.config(), o, dev, available, tokenizer_memory(ck.dir()), &ck);
}

size_t tokenizer_memory(const std::filesystem::path& dir) {
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(dir / "tokenizer.json", ec);
  return ec ? 0 : static_cast<size_t>(bytes) * 14;
}

size_t MemoryPlan::kv_room() const {
  const double usable = static_cast<double>(available) * (1.0 - kMemoryHeadroom);
  const size_t rest =
      weight_bytes + working_bytes() + host_logits_bytes + tokenizer_bytes + runtime_bytes;
  return usable > static_cast<double>(rest) ? static_cast<size_t>(usable) - rest : 0;
}

void check_fits_in_memory(const MemoryPlan& plan, const std::string& what) {
  if (plan.available == 0 || plan.total() <= plan.available) return;
  throw Error(what + " needs " + format_bytes(plan.total()) + " (weights " +
              format_bytes(plan.weight_bytes) + ", kv pool " + format_bytes(plan.kv_cache_bytes) +
              " for " + std::to_string(plan.kv_budget_tokens) + " tokens) but only " +
              format_bytes(plan.available) +
              " of memory are available; lower max_seq_len or the kv budget, or choose a smaller "
              "precision");
}

size_t parse_bytes(const std::string& text, const std::string& what) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
    ++i;
  if (i == 0) throw Error(what + ": '" + text + "' is not a size such as 12GiB");
  double v = std::stod(text.substr(0, i));
  std::string unit = text.substr(i);
  unit.erase(std::remove(unit.begin(), unit.end(), ' '), unit.end());
  for (char& ch : unit) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  const struct {
    const char* name;
    double scale;
  } units[] = {{"", 1},
               {"b", 1},
               {"kib", 1024.0},
               {"mib", 1048576.0},
               {"gib", 1073741824.0},
               {"tib", 1099511627776.0},
               {"kb", 1e3},
               {"mb", 1e6},
               {"gb", 1e9},
               {"tb", 1e12},
               {"k", 1024.0},
               {"m", 1048576.0},
               {"g", 1073741824.0}};
  for (const auto& u : units) {
    if (unit == u.name) {
      v *= u.scale;
      if (!(v >= 0) || v > 1e18) throw Error(what + ": '" + text + "' is out of range");
      return static_cast<size_t>(v);
    }
  }
  throw Error(what + ": unknown unit in '" + text + "' (use B, KiB, MiB, GiB, KB, MB, GB)");
}

std::string format_bytes(size_t bytes) {
  char buf[32];
  const double b = static_cast<double>(bytes);
  if (b >= 1073741824.0) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / 1073741824.0);
  } else if (b >= 1048576.0) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", b / 1048576.0);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  }
  return buf;
}

}  // namespace bringup
