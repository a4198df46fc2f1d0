#include "runtime/scheduler.h"

#include <algorithm>
#include <cmath>

#include "bringup/error.h"
#include "runtime/kv_cache.h"

namespace bringup {

namespace {

int64_t blocks_for(int64_t positions, int64_t block_size) {
  return (positions + block_size - 1) / block_size;
}

// log_softmax of the picked id and the k likeliest ids, from raw logits.
void log_probs(std::span<const float> logits, int32_t token, int k, GenerationEvent& e) {
  const float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l) - max);
  const double lse = max + std::log(sum);
  e.logprob = static_cast<float>(logits[token] - lse);
  if (k <= 0) return;
  // The k likeliest in one pass, kept sorted (largest first, ties by id): k is at most 20.
  std::vector<int32_t> top;
  const auto before = [&](int32_t a, int32_t b) {
    return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
  };
  for (int32_t id = 0; id < static_cast<int32_t>(logits.size()); ++id) {
    if (static_cast<int>(top.size()) == k && !before(id, top.back())) continue;
    if (static_cast<int>(top.size()) == k) top.pop_back();
    top.insert(std::upper_bound(top.begin(), top.end(), id, before), id);
  }
  for (int32_t id : top) e.top.emplace_back(id, static_cast<float>(logits[id] - lse));
}

}  // namespace

Scheduler::Scheduler(Model& model, const Tokenizer* tokenizer, SchedulerOptions options)
    : model_(model), tokenizer_(tokenizer), options_(options) {
  const KvPoolStats pool = model.kv_pool();
  vocab_ = model.config().vocab_size;
  max_seq_len_ = model.max_seq_len();
  block_size_ = pool.block_size;
  total_blocks_ = pool.total_blocks;
  budget_tokens_ = pool.budget_tokens;
}

Scheduler::~Scheduler() = default;

int64_t Scheduler::blocks_needed(const GenerationRequest& r) const {
  const int64_t prompt = static_cast<int64_t>(r.prompt.size());
  const int64_t own = blocks_for(prompt + r.settings.max_new_tokens - 1, block_size_);
  return own + (r.n - 1) * (own - prompt / block_size_);
}

int64_t Scheduler::target(const Active& a, const Choice& c) const {
  return static_cast<int64_t>(a.request.prompt.size() + c.gen->ids().size()) - 1;
}

int64_t Scheduler::blocks_to_start(const Active& a) const {
  const int64_t prompt = static_cast<int64_t>(a.request.prompt.size());
  if (a.choices.empty()) return blocks_for(prompt + 1, block_size_);
  int64_t n = blocks_for(prompt, block_size_);
  for (const Choice& c : a.choices) {
    if (!c.done) n += blocks_for(target(a, c) + 1, block_size_) - prompt / block_size_;
  }
  return n;
}

int64_t Scheduler::blocks_ahead() const {
  int64_t n = 0;
  for (const auto& a : running_) {
    const int64_t prompt = static_cast<int64_t>(a->request.prompt.size());
    if (a->base) n += a->base->blocks_to_grow(prompt + 1);
    for (const Choice& c : a->choices) {
      if (c.done) continue;
      n += c.seq ? c.seq->blocks_to_grow(target(*a, c) + 1)
                 : blocks_for(target(*a, c) + 1, block_size_) - prompt / block_size_;
    }
  }
  return n;
}

void Scheduler::check(const GenerationRequest& r) const {
  if (r.prompt.empty()) throw Error("the prompt is empty");
  if (r.settings.max_new_tokens < 1) throw Error("max_new_tokens must be at least 1");
  if (r.n < 1 || r.n > Scheduler::kMaxChoices) {
    throw Error("n must be in 1.." + std::to_string(Scheduler::kMaxChoices) + ", not " +
                std::to_string(r.n));
  }
  for (int32_t id : r.prompt) {
    if (id < 0 || id >= vocab_) {
      throw Error("prompt token id " + std::to_string(id) +
                  " is outside the model's vocabulary (0.." + std::to_string(vocab_ - 1) + ")");
    }
  }
  const int64_t prompt = static_cast<int64_t>(r.prompt.size());
  check_seq_len(prompt + r.settings.max_new_tokens - 1, max_seq_len_, [&] {
    return "prompt of " + std::to_string(prompt) + " tokens plus " +
           std::to_string(r.settings.max_new_tokens) + " new tokens";
  });
  // The oldest request is never preempted, so it must fit alone.
  if (blocks_needed(r) > total_blocks_) {
    throw Error("prompt of " + std::to_string(prompt) + " tokens plus " +
                std::to_string(r.settings.max_new_tokens) + " new tokens" +
                (r.n > 1 ? " for " + std::to_string(r.n) + " choices" : std::string()) +
                " needs more than the whole kv budget of " + std::to_string(budget_tokens_) +
                " tokens");
  }
}

uint64_t Scheduler::submit(GenerationRequest r, EventFn on_event) {
  check(r);
  Active a;
  a.id = next_id_++;
  a.request = std::move(r);
  a.on_event = std::move(on_event);
  waiting_.push_back(std::move(a));
  return waiting_.back().id;
}

void Scheduler::cancel(uint64_t id) {
  std::erase_if(waiting_, [&](const Active& a) { return a.id == id; });
  std::erase_if(running_, [&](const std::unique_ptr<Active>& a) { return a->id == id; });
}

void Scheduler::admit() {
  // A little room kept free for the running ones' growth, as vLLM's watermark does.
  const int64_t watermark = total_blocks_ / 100;
  while (!waiting_.empty() && (options_.max_running <= 0 ||
                               static_cast<int64_t>(running_.size()) < options_.max_running)) {
    if (!running_.empty() && blocks_to_start(waiting_.front()) + blocks_ahead() + watermark >
                                 model_.kv_pool().free_blocks) {
      break;
    }
    auto a = std::make_unique<Active>(std::move(waiting_.front()));
    waiting_.pop_front();
    a->base = model_.new_sequence();
    if (options_.prefix_cache) {
      model_.reuse_prefix(*a->base, a->request.prompt);
      a->base_offered = a->base->length() / block_size_;
    }
    const auto at =
        std::upper_bound(running_.begin(), running_.end(), a->id,
                         [](uint64_t id, const std::unique_ptr<Active>& r) { return id < r->id; });
    running_.insert(at, std::move(a));
  }
}

void Scheduler::preempt(std::unique_ptr<Active>& a) {
  a->base.reset();
  a->base_offered = 0;
  for (Choice& c : a->choices) {
    c.seq.reset();
    c.offered = 0;
  }
  ++preemptions_;
  const auto at = std::upper_bound(waiting_.begin(), waiting_.end(), a->id,
                                   [](uint64_t id, const Active& w) { return id < w.id; });
  waiting_.insert(at, std::move(*a));
}

bool Scheduler::plan_step() {
  rows_.clear();
  owners_.clear();
  prompts_done_.clear();
  int64_t left = model_.kv_pool().free_blocks;
  const size_t max_rows = static_cast<size_t>(model_.max_step_rows());
  // Decode rows of every running choice first (those past the step's rows wait for the next).
  for (const auto& a : running_) {
    for (size_t c = 0; c < a->choices.size() && rows_.size() < max_rows; ++c) {
      Choice& ch = a->choices[c];
      if (ch.done || !ch.seq || ch.seq->length() != target(*a, ch)) continue;
      left -= ch.seq->blocks_to_grow(ch.seq->length() + 1);
      rows_.push_back({ch.seq.get(), ch.gen->ids().back(), ch.seq->length(), true});
      owners_.emplace_back(a.get(), static_cast<int>(c));
    }
  }
  if (left < 0) return false;
  // Then prompt chunks (and the tokens of preempted choices, computed again), in arrival order,
  // within the step's room, the prompt budget and the free blocks.
  int64_t room = static_cast<int64_t>(max_rows - rows_.size());
  if (options_.prompt_tokens_per_step > 0) room = std::min(room, options_.prompt_tokens_per_step);
  const auto chunk = [&](Sequence& seq, int64_t end, const auto& token_at, bool logits) {
    const int64_t len = seq.length();
    int64_t n = std::min(end - len, room);
    while (n > 0 && seq.blocks_to_grow(len + n) > left)
      n = (len + n - 1) / block_size_ * block_size_ - len;
    if (n <= 0) return false;
    left -= seq.blocks_to_grow(len + n);
    for (int64_t pos = len; pos < len + n; ++pos) {
      rows_.push_back({&seq, token_at(pos), pos, logits && pos + 1 == end});
    }
    room -= n;
    return len + n == end;
  };
  for (const auto& a : running_) {
    const std::vector<int32_t>& prompt = a->request.prompt;
    const int64_t p = static_cast<int64_t>(prompt.size());
    if (a->base) {
      const bool fresh = a->choices.empty();
      if (chunk(
              *a->base, p, [&](int64_t pos) { return prompt[static_cast<size_t>(pos)]; }, fresh)) {
        if (fresh)
          owners_.emplace_back(a.get(), -1);
        else
          prompts_done_.push_back(a.get());
      }
      continue;
    }
    for (Choice& c : a->choices) {
      if (c.done || !c.seq || c.seq->length() >= target(*a, c)) continue;
      const std::vector<int32_t>& drawn = c.gen->ids();
      chunk(
          *c.seq, target(*a, c),
          [&](int64_t pos) {
            return pos < p ? prompt[static_cast<size_t>(pos)] : drawn[static_cast<size_t>(pos - p)];
          },
          false);
    }
  }
  return !rows_.empty();
}

void Scheduler::deliver(Active& a, int choice, std::span<const float> logits) {
  Choice& c = a.choices[static_cast<size_t>(choice)];
  GenerationEvent e;
  e.choice = choice;
  e.token = c.gen->pick(logits);
  if (a.request.top_logprobs >= 0) log_probs(logits, e.token, a.request.top_logprobs, e);
  e.piece = c.gen->piece();
  e.finished = c.gen->finished();
  e.finish = c.gen->finish_reason();
  e.prompt_tokens = static_cast<int64_t>(a.request.prompt.size());
  e.generated = static_cast<int64_t>(c.gen->ids().size());
  ++generated_total_;
  if (e.finished) {
    c.done = true;
    c.seq.reset();  // its blocks go back to the pool now
  }
  if (a.on_event) a.on_event(e);
}

void Scheduler::prompt_done(Active& a, std::span<const float> logits) {
  const bool fresh = a.choices.empty();
  for (int i = 0; fresh && i < a.request.n; ++i) {
    GenerationSettings s = a.request.settings;
    s.sampling.seed += static_cast<uint64_t>(i);  // choice i draws with seed + i
    Choice c;
    c.gen = std::make_unique<SequenceGenerator>(s, tokenizer_, a.request.prompt);
    a.choices.push_back(std::move(c));
  }
  for (Choice& c : a.choices) {  // forks share the prompt's blocks
    if (c.done) continue;
    c.seq = model_.fork(*a.base);
    c.offered = a.base_offered;
  }
  a.base.reset();
  for (int i = 0; fresh && i < a.request.n; ++i) deliver(a, i, logits);
}

void Scheduler::offer(Sequence& seq, int64_t& offered, std::span<const int32_t> prompt,
                      std::span<const int32_t> drawn) {
  if (!options_.prefix_cache || seq.length() / block_size_ == offered) return;
  std::vector<int32_t> tokens(prompt.begin(), prompt.end());
  tokens.insert(tokens.end(), drawn.begin(), drawn.end());
  tokens.resize(
      static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(tokens.size()), seq.length())));
  model_.cache_prefix(seq, tokens);
  offered = seq.length() / block_size_;
}

void Scheduler::retire() {
  std::erase_if(running_, [&](const std::unique_ptr<Active>& a) {
    return !a->choices.empty() && std::all_of(a->choices.begin(), a->choices.end(),
                                              [](const Choice& c) { return c.done; });
  });
}

bool Scheduler::step() {
  admit();
  if (running_.empty()) return false;
  while (!plan_step()) {
    if (running_.size() == 1) {  // check() made sure it fits alone: a bug if this happens
      throw Error("the kv pool cannot hold request " + std::to_string(running_.front()->id) +
                  " alone");
    }
    preempt(running_.back());
    running_.pop_back();
  }
  const int64_t decode_rows =
      static_cast<int64_t>(owners_.size()) -
      std::count_if(owners_.begin(), owners_.end(), [](const auto& o) { return o.second < 0; });
  prompt_total_ += static_cast<int64_t>(rows_.size()) - decode_rows;

  const std::span<const float> logits = model_.step(rows_);
  for (const auto& a : running_) {  // before a finished choice lets its blocks go
    if (a->base) offer(*a->base, a->base_offered, a->request.prompt, {});
    for (Choice& c : a->choices) {
      if (c.seq) offer(*c.seq, c.offered, a->request.prompt, c.gen->ids());
    }
  }
  const size_t vocab = static_cast<size_t>(model_.config().vocab_size);
  for (size_t j = 0; j < owners_.size(); ++j) {
    auto [a, choice] = owners_[j];
    const std::span<const float> row = logits.subspan(j * vocab, vocab);
    if (choice >= 0)
      deliver(*a, choice, row);
    else
      prompt_done(*a, row);  // the prompt is in: every choice draws its first token
  }
  for (Active* a : prompts_done_) prompt_done(*a, {});
  retire();
  return true;
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats s;
  s.running = static_cast<int64_t>(running_.size());
  s.waiting = static_cast<int64_t>(waiting_.size());
  s.prompt_tokens = prompt_total_;
  s.generated_tokens = generated_total_;
  s.preemptions = preemptions_;
  return s;
}

}  // namespace bringup
