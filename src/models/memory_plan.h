// How much memory a model takes on the CPU device under a precision policy: weights by group and
// format (the packed layout's exact bytes), the KV cache, working buffers. Computed from the
// config alone, so it can answer before anything is loaded.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bringup/config.h"
#include "bringup/precision.h"

namespace bringup {

struct MemoryPlan {
  struct Item {
    std::string name, format;
    size_t bytes;
  };
  std::vector<Item> weights;
  size_t weight_bytes = 0;  // equals Model::weight_bytes() once built
  size_t parameters = 0;    // matrix elements (what a token multiplies once, with the embedding)
  size_t kv_cache_bytes = 0;
  size_t working_bytes = 0;
  size_t runtime_bytes = 0;  // code, libraries and bookkeeping: a constant measured on this build
  size_t total() const { return weight_bytes + kv_cache_bytes + working_bytes + runtime_bytes; }
};

// kv_tokens: the KV pool's budget in positions, all sequences together (rounded up to blocks);
// prefill_chunk: the most rows one forward step runs.
MemoryPlan plan_memory(const ModelConfig& c, Precision precision, int64_t max_seq_len,
                       int64_t kv_tokens, int threads, int64_t prefill_chunk = 512,
                       int64_t kv_block_size = 32);

// Memory this process can still take (MemAvailable in /proc/meminfo; 0 if unknown).
size_t available_memory();
// Throws Error, naming what the plan holds and what is available, when it cannot fit.
void check_fits_in_memory(const MemoryPlan& plan, const std::string& what);

// "12GiB", "512 MiB", "3.5GB", "1000000" (bytes). Throws Error naming `what` otherwise.
size_t parse_bytes(const std::string& text, const std::string& what);
std::string format_bytes(size_t bytes);  // "10.12 GiB"

}  // namespace bringup
