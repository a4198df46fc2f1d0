#include "models/memory_plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "bringup/error.h"
#include "kernels/cpu/packed_weight.h"
#include "models/family.h"
#include "models/precision_policy.h"

namespace bringup {

MemoryPlan plan_memory(const ModelConfig& c, Precision precision, int64_t max_seq_len,
                       int64_t kv_tokens, int threads, int64_t prefill_chunk,
                       int64_t kv_block_size) {
  const WeightPolicy pol = weight_policy(precision);
  const int64_t h = c.hidden_size, q = c.q_dim(), kv = c.kv_dim(), im = c.intermediate_size;
  const int64_t layers = c.num_hidden_layers;
  MemoryPlan p;
  auto add = [&](const std::string& name, WeightFormat f, std::vector<int64_t> rows, int64_t k,
                 int64_t copies) {
    const size_t bytes = cpu::packed_bytes(f, rows, k) * static_cast<size_t>(copies);
    p.weights.push_back({name, std::string(weight_format_name(f)), bytes});
    p.weight_bytes += bytes;
  };
  add("embedding [" + std::to_string(c.vocab_size) + " x " + std::to_string(h) + "]", pol.embedding,
      {c.vocab_size}, h, 1);
  if (!c.tie_word_embeddings || pol.lm_head != pol.embedding) {
    add("lm_head", pol.lm_head, {c.vocab_size}, h, 1);
  } else {
    p.weights.push_back({"lm_head (tied to the embedding)", "-", 0});
  }
  const std::string per = " (" + std::to_string(layers) + " layers)";
  add("attention q/k/v" + per, pol.attention, {q, kv, kv}, h, layers);
  add("attention o" + per, pol.attention, {h}, q, layers);
  add("mlp gate/up" + per, pol.gate_up, {im, im}, h, layers);
  add("mlp down" + per, pol.down, {h}, im, layers);
  size_t vector_elems = 0;  // norms and biases: the 1-D tensors of the family's list
  for (const ExpectedTensor& t : expected_tensors(c)) {
    if (t.shape.size() == 1) vector_elems += static_cast<size_t>(t.shape[0]);
  }
  const size_t vector_bytes = vector_elems * (pol.vectors_bf16 ? 2 : 4);
  p.weights.push_back({"norms and biases", pol.vectors_bf16 ? "bf16" : "fp32", vector_bytes});
  p.weight_bytes += vector_bytes;
  p.parameters = static_cast<size_t>(c.vocab_size * h * (c.tie_word_embeddings ? 1 : 2) +
                                     layers * (h * (q + 2 * kv) + q * h + 3 * h * im));

  // The pool holds the budget in whole blocks.
  const int64_t blocks = (kv_tokens + kv_block_size - 1) / kv_block_size;
  const size_t elem = pol.cache == CacheDType::kF32 ? 4 : 2;
  p.kv_cache_bytes = static_cast<size_t>(layers * 2 * kv * blocks * kv_block_size) * elem;

  // Activations of one prefill chunk (ops/ops.h shapes), kernel scratch per thread.
  const int64_t t = std::min(prefill_chunk, max_seq_len);
  const int64_t group = c.group_size();
  size_t floats = static_cast<size_t>(t * (3 * h + 2 * (q + 2 * kv) + q + 3 * im + c.head_dim) + h +
                                      c.vocab_size);
  const int64_t max_k = std::max({h, q, im});
  floats += static_cast<size_t>(threads * t * 32);  // matmul accumulators
  floats += static_cast<size_t>(threads * (group * (max_seq_len + c.head_dim + 2) + c.head_dim));
  floats += static_cast<size_t>(c.num_key_value_heads * t * ((max_seq_len + 255) / 256) * group *
                                (c.head_dim + 2));  // attention partials of every row
  size_t bytes = floats * 4 + static_cast<size_t>(t * max_k) * 2;  // bf16 activations
  if (pol.gate_up == WeightFormat::kBfp8 || pol.down == WeightFormat::kBfp8 ||
      pol.attention == WeightFormat::kBfp8) {
    bytes += static_cast<size_t>(threads * 2 * 512 * 16) * 2;  // decoded blocks of panels
  }
  p.working_bytes = bytes;
  p.runtime_bytes = size_t{24} << 20;
  return p;
}

size_t available_memory() {
  std::ifstream in("/proc/meminfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("MemAvailable:", 0) == 0) return std::stoull(line.substr(13)) * 1024;
  }
  return 0;
}

void check_fits_in_memory(const MemoryPlan& plan, const std::string& what) {
  const size_t available = available_memory();
  if (available == 0 || plan.total() <= available) return;
  throw Error(what + " needs " + format_bytes(plan.total()) + " (weights " +
              format_bytes(plan.weight_bytes) + ", kv cache " + format_bytes(plan.kv_cache_bytes) +
              ") but only " + format_bytes(available) +
              " of memory are available; lower max_seq_len or choose a smaller precision");
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
