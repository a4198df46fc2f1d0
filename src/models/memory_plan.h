// How much memory a model takes on a device under its options: weights by group and format (the
// packed layout's exact bytes), the KV pool, the activations (from the table the model allocates
// from) and the device's kernel workspace (as the device sizes it). Computed from the config, so
// it answers before anything is loaded; the model is built from the plan's KV budget.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "bringup/checkpoint.h"
#include "bringup/config.h"
#include "bringup/model.h"
#include "device/device.h"

namespace bringup {

struct MemoryPlan {
  struct Item {
    std::string name, format;
    size_t bytes;
  };
  std::vector<Item> weights;
  size_t weight_bytes = 0;  // equals Model::weight_bytes() once built
  size_t parameters = 0;    // matrix elements (what a token multiplies once, with the embedding)
  int64_t max_seq_len = 0;
  int64_t kv_budget_tokens = 0;   // the pool's budget: as asked, or what fits (kv_budget_fitted)
  bool kv_budget_fitted = false;  // options left it 0: it fills the memory beside the rest
  size_t kv_cache_bytes = 0;
  size_t kv_bytes_per_token = 0;  // K and V of one position, every layer
  size_t activation_bytes = 0;    // one step's activations at max_step_rows
  size_t workspace_bytes = 0;     // the device's kernel scratch
  size_t host_logits_bytes = 0;   // one step's logits read back to the host (max_logit_rows)
  size_t tokenizer_bytes = 0;     // the parsed tokenizer, when the directory has one
  size_t runtime_bytes = 0;  // code, libraries and bookkeeping: a constant measured on this build
  size_t available = 0;      // the memory the plan was made to fit in (0: unknown)
  size_t working_bytes() const { return activation_bytes + workspace_bytes; }
  size_t total() const {
    return weight_bytes + kv_cache_bytes + working_bytes() + host_logits_bytes + tokenizer_bytes +
           runtime_bytes;
  }
  // What may go to the KV pool when everything else is in place (0 when nothing can).
  size_t kv_room() const;
};

// The share of the memory available a fitted KV budget leaves free for everything else on the
// machine (vLLM leaves 10% of a GPU by default, too).
constexpr double kMemoryHeadroom = 0.10;

// The plan of `c` built with `o` on `dev`, to fit in `available` bytes (the device's free memory,
// or a size the caller names; 0: unknown). A kv_budget_tokens of 0 takes what fits beside the
// rest, at least max_sequences x max_seq_len. Throws Error for bad options, and for the native
// policy, whose formats only a checkpoint tells.
MemoryPlan plan_memory(const ModelConfig& c, const ModelOptions& o, const Device& dev,
                       size_t available, size_t tokenizer_bytes = 0);
// The same for a checkpoint, counting its tokenizer too, and its own formats under native.
MemoryPlan plan_memory(const Checkpoint& ck, const ModelOptions& o, const Device& dev,
                       size_t available);
// Memory a parsed tokenizer.json takes at its peak: its size times a factor measured on this
// build (the Qwen2 tokenizer, 6.0 MB of JSON, peaks at 82 MiB while parsed); 0 without one.
size_t tokenizer_memory(const std::filesystem::path& dir);

// Throws Error, naming what the plan holds and what is available, when it cannot fit.
void check_fits_in_memory(const MemoryPlan& plan, const std::string& what);

// "12GiB", "512 MiB", "3.5GB", "1000000" (bytes). Throws Error naming `what` otherwise.
size_t parse_bytes(const std::string& text, const std::string& what);
std::string format_bytes(size_t bytes);  // "10.12 GiB"

}  // namespace bringup
