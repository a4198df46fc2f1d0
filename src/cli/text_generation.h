// Generation as `generate` and `chat` run it: the command line's sampling arguments over
// generation_config.json's, and the reply printed as the runtime's generation policy
// (runtime/generation.h) releases it.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "bringup/bringup.h"
#include "runtime/generate.h"
#include "runtime/generation.h"

namespace bringup::cli {

struct SamplingArgs {
  int64_t max_new_tokens = 0;  // 0: generation_config's max_new_tokens, else 256
  double temperature = 0, top_p = 0, min_p = 0, repetition_penalty = 0;
  int64_t top_k = 0;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  CLI::Option *temperature_opt = nullptr, *top_k_opt = nullptr, *top_p_opt = nullptr,
              *min_p_opt = nullptr, *penalty_opt = nullptr, *seed_opt = nullptr;
};

void add_sampling_args(CLI::App* app, SamplingArgs& a);

// generation_config.json, overridden by what was given on the command line. A --temperature > 0
// turns sampling on, 0 turns it off.
GenerationSettings settings_from(const SamplingArgs& a, const Checkpoint& ck, const Tokenizer* tok);

struct GenerationResult {
  std::vector<int32_t> ids;  // generated tokens (the last one is not in the cache)
  std::string text;          // as shown (without a stop string or the end token's text)
  GenerateStats stats;
};

// Runs `prompt` after what seq holds and streams the reply to out: text when a tokenizer is
// given, else ids. `history` holds the ids already in seq (for the repetition penalty).
GenerationResult stream_generation(Model& model, Sequence& seq, const Tokenizer* tokenizer,
                                   std::span<const int32_t> history,
                                   std::span<const int32_t> prompt, const GenerationSettings& s,
                                   std::FILE* out);

void print_summary(const GenerationResult& r, const Model& model, const Device& device,
                   double load_seconds, const SamplingParams& sampling);

}  // namespace bringup::cli
