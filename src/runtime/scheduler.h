// Continuous batching for requests that come and go while steps run, as a server needs it. Each
// step holds the next token of every running sequence first, then prompt chunks of admitted
// requests up to a prompt-token budget, so a long prompt never freezes the others (llama.cpp's
// server and vLLM schedule the same way). A request is admitted when the KV pool has room for its
// prompt beside what the running ones are about to take; sequences then grow block by block. When
// a step's decode rows need more blocks than are free, the latest-arrived running request is
// preempted (vLLM's recompute preemption): its blocks go back to the pool and it waits at the head
// of the queue; readmitted, it computes its prompt and its tokens so far again (bit-identical:
// steps are batch-invariant) and carries on, so an admitted request never fails for lack of blocks
// and its client sees no difference. The oldest request is never preempted, so every request
// finishes. The n choices of one request are forks that share the prompt's blocks. With prefix
// caching, a prompt starts from the cached KV blocks of the longest prefix it shares with earlier
// prompts and replies (system prompts, chat history). Events go to each request's callback on the
// thread that calls step(). Not thread-safe: one thread owns a Scheduler (the server's engine
// thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bringup/model.h"
#include "runtime/generation.h"

namespace bringup {

struct GenerationRequest {
  std::vector<int32_t> prompt;
  GenerationSettings settings;
  int n = 1;              // choices sampled from the prompt (choice i draws with seed + i)
  int top_logprobs = -1;  // -1: no log-probabilities; k >= 0: the picked id's and the k likeliest
};

// What one step did for one choice of a request.
struct GenerationEvent {
  int choice = 0;
  int32_t token = -1;
  std::string piece;  // text this token releases (see SequenceGenerator::piece)
  float logprob = 0;  // of `token` under the model's distribution (when asked)
  std::vector<std::pair<int32_t, float>> top;  // the top_logprobs likeliest ids (when asked)
  bool finished = false;
  FinishReason finish = FinishReason::kNone;
  int64_t prompt_tokens = 0;
  int64_t generated = 0;  // tokens of this choice so far
};
using EventFn = std::function<void(const GenerationEvent&)>;

struct SchedulerOptions {
  int64_t prompt_tokens_per_step = 0;  // 0: what room the step has (the model's max_step_rows)
  int64_t max_running = 0;             // requests admitted at once; 0: as many as the KV pool holds
  bool prefix_cache = true;            // reuse cached KV blocks of earlier prompts and replies
};

struct SchedulerStats {
  int64_t running = 0, waiting = 0;
  int64_t prompt_tokens = 0, generated_tokens = 0;  // totals since start (recomputed ones too)
  int64_t preemptions = 0;                          // since start
};

class Scheduler {
 public:
  static constexpr int kMaxChoices = 64;  // the most choices (n) one request may ask for

  Scheduler(Model& model, const Tokenizer* tokenizer, SchedulerOptions options = {});
  ~Scheduler();

  // Throws Error naming what is wrong with the request (empty prompt, max_new_tokens below 1,
  // longer than max_seq_len, more than the whole KV budget, n outside 1..64, ids outside the
  // vocabulary). Reads only what is fixed when the model is built, so any thread may call it.
  void check(const GenerationRequest& request) const;
  // check(), then queues the request and returns its id.
  uint64_t submit(GenerationRequest request, EventFn on_event);
  // Drops a waiting or running request: no more events, its blocks back to the pool.
  void cancel(uint64_t id);
  // Runs one forward step over what is admitted; false when there was nothing to run.
  bool step();
  bool idle() const { return running_.empty() && waiting_.empty(); }
  SchedulerStats stats() const;

 private:
  // One choice: its sampler and tokens, and (while running) its sequence. Before it decodes, its
  // sequence holds the prompt and every token it drew but the last (`target` positions).
  struct Choice {
    std::unique_ptr<Sequence> seq;
    std::unique_ptr<SequenceGenerator> gen;
    bool done = false;
    int64_t offered = 0;  // full blocks offered to the prefix cache
  };
  struct Active {
    uint64_t id = 0;  // arrival order: the latest is preempted first
    GenerationRequest request;
    EventFn on_event;
    std::unique_ptr<Sequence> base;  // the prompt, until the choices fork from it
    int64_t base_offered = 0;
    std::vector<Choice> choices;  // empty until the first tokens are drawn
  };

  void admit();
  void preempt(std::unique_ptr<Active>& a);  // back to the queue, its blocks to the pool
  // Lays out the step's rows within the free blocks; false when they do not fit, and nothing is
  // laid out that a preemption would not change.
  bool plan_step();
  void deliver(Active& a, int choice, std::span<const float> logits);
  void prompt_done(Active& a, std::span<const float> logits);  // forks the choices from `base`
  void retire();  // removes requests whose every choice is done
  void offer(Sequence& seq, int64_t& offered, std::span<const int32_t> prompt,
             std::span<const int32_t> drawn);  // newly full blocks to the prefix cache

  int64_t target(const Active& a, const Choice& c) const;
  // Blocks a queued request takes to start (its prompt, and the tokens of a preempted one).
  int64_t blocks_to_start(const Active& a) const;
  // Blocks the running requests take before each of their choices decodes once more.
  int64_t blocks_ahead() const;
  // Blocks one request needs at most (its choices share the prompt's full blocks).
  int64_t blocks_needed(const GenerationRequest& r) const;

  Model& model_;
  const Tokenizer* tokenizer_;
  SchedulerOptions options_;
  int64_t vocab_, max_seq_len_, block_size_, total_blocks_, budget_tokens_;
  uint64_t next_id_ = 1;
  std::deque<Active> waiting_;
  std::vector<std::unique_ptr<Active>> running_;  // in arrival order
  int64_t prompt_total_ = 0, generated_total_ = 0, preemptions_ = 0;
  std::vector<BatchRow> rows_;
  std::vector<std::pair<Active*, int>> owners_;  // per logits row: request and choice (-1: all)
  std::vector<Active*> prompts_done_;            // requests whose prompt this step completes
};

}  // namespace bringup
