// Generation: one sequence (prefill the prompt, then pick and decode one token at a time until an
// end-of-sequence id, the token budget, or the caller says stop), or many requests together in
// continuous-batching steps.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "bringup/model.h"
#include "runtime/generation.h"
#include "runtime/scheduler.h"

namespace bringup {

// Picks the next token from logits; greedy (argmax) unless a sampler is given.
using PickFn = std::function<int32_t(std::span<const float> logits)>;
// Sees every generated token; returns false to stop.
using TokenFn = std::function<bool(int32_t id)>;

struct GenerateOptions {
  int64_t max_new_tokens = 32;
  std::vector<int64_t> eos_ids;  // generation stops after emitting one of these
  PickFn pick;                   // nullptr: greedy
};

struct GenerateStats {
  int64_t prompt_tokens = 0;
  int64_t generated = 0;
  double time_to_first_token = 0;  // seconds: prefill and the first pick
  double decode_seconds = 0;       // the decode steps after the first token
  bool stopped_by_eos = false;
};

int32_t argmax(std::span<const float> logits);

// Appends to seq: the prompt, then the generated tokens (the last one is not decoded).
std::vector<int32_t> generate(Model& model, Sequence& seq, std::span<const int32_t> prompt,
                              const GenerateOptions& options, const TokenFn& on_token,
                              GenerateStats* stats = nullptr);

struct GenerationOutput {
  std::vector<int32_t> ids;  // generated tokens
  std::string text;          // as shown (without a stop string or the end token's text)
  FinishReason finish = FinishReason::kNone;
  GenerateStats stats;  // time to first token counts from the start of the batch
};

// Runs every request (n = 1) to its end in shared forward steps (a Scheduler, scheduler.h): each
// step holds the next token of every running sequence, then prompt chunks of admitted ones up to
// the model's max_step_rows(). A request is admitted when the KV pool can hold its prompt plus
// max_new_tokens beside those running; one that cannot fit an empty pool is an Error naming the
// budget. Outputs are in request order; on_done(i, output) is called as each finishes. With greedy
// sampling every output equals generating its request alone (steps are batch-invariant).
std::vector<GenerationOutput> generate_batch(
    Model& model, const Tokenizer* tokenizer, std::span<const GenerationRequest> requests,
    const std::function<void(size_t, const GenerationOutput&)>& on_done = nullptr);

}  // namespace bringup
