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
  a.need = blocks_needed(r);
  a.request = std::move(r);
  a.on_event = std::move(on_event);
  waiting_.push_back(std::move(a));
  return waiting_.back().id;
}

void Scheduler::cancel(uint64_t id) {
  for (auto it = waiting_.begin(); it != waiting_.end(); ++it) {
    if (it->id == id) {
      waiting_.erase(it);
      return;
    }
  }
  for (auto it = running_.begin(); it != running_.end(); ++it) {
    if ((*it)->id == id) {
      reserved_ -= (*it)->need;
      running_.erase(it);  // its sequences return their blocks
      return;
    }
  }
}

void Scheduler::admit() {
  while (
      !waiting_.empty() && reserved_ + waiting_.front().need <= total_blocks_ &&
      (options_.max_running <= 0 || static_cast<int64_t>(running_.size()) < options_.max_running)) {
    auto a = std::make_unique<Active>(std::move(waiting_.front()));
    waiting_.pop_front();
    Choice c;
    c.seq = model_.new_sequence();
    c.gen = std::make_unique<SequenceGenerator>(a->request.settings, tokenizer_, a->request.prompt);
    if (options_.prefix_cache) {
      a->prefilled = model_.reuse_prefix(*c.seq, a->request.prompt);
      c.offered = a->prefilled / block_size_;
    }
    a->choices.push_back(std::move(c));
    reserved_ += a->need;
    running_.push_back(std::move(a));
  }
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

void Scheduler::offer(Active& a, Choice& c) {
  if (!options_.prefix_cache || !c.seq || c.seq->length() / block_size_ == c.offered) return;
  std::vector<int32_t> tokens = a.request.prompt;
  tokens.insert(tokens.end(), c.gen->ids().begin(), c.gen->ids().end());
  tokens.resize(
      static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(tokens.size()), c.seq->length())));
  model_.cache_prefix(*c.seq, tokens);
  c.offered = c.seq->length() / block_size_;
}

void Scheduler::retire() {
  std::erase_if(running_, [&](const std::unique_ptr<Active>& a) {
    const bool done = !a->choices.empty() && std::all_of(a->choices.begin(), a->choices.end(),
                                                         [](const Choice& c) { return c.done; });
    if (done) reserved_ -= a->need;
    return done;
  });
}

bool Scheduler::step() {
  admit();
  rows_.clear();
  owners_.clear();
  // Decode rows of every running choice first.
  for (const auto& a : running_) {
    if (a->prefilled < static_cast<int64_t>(a->request.prompt.size())) continue;
    for (size_t c = 0; c < a->choices.size(); ++c) {
      Choice& ch = a->choices[c];
      if (ch.done) continue;
      rows_.push_back({ch.seq.get(), ch.gen->ids().back(), ch.seq->length(), true});
      owners_.emplace_back(a.get(), static_cast<int>(c));
    }
  }
  // Then prompt chunks, in admission order, within the step's room and the prompt budget.
  int64_t room = model_.max_step_rows() - static_cast<int64_t>(rows_.size());
  if (options_.prompt_tokens_per_step > 0) room = std::min(room, options_.prompt_tokens_per_step);
  for (const auto& a : running_) {
    const std::vector<int32_t>& prompt = a->request.prompt;
    const int64_t left = static_cast<int64_t>(prompt.size()) - a->prefilled;
    if (left == 0 || room <= 0) continue;
    const int64_t n = std::min(left, room);
    Sequence* seq = a->choices[0].seq.get();
    for (int64_t j = 0; j < n; ++j) {
      const int64_t pos = a->prefilled + j;
      const bool last = pos + 1 == static_cast<int64_t>(prompt.size());
      rows_.push_back({seq, prompt[static_cast<size_t>(pos)], pos, last});
      if (last) owners_.emplace_back(a.get(), -1);
    }
    a->prefilled += n;
    prompt_total_ += n;
    room -= n;
  }
  if (rows_.empty()) return false;

  const std::span<const float> logits = model_.step(rows_);
  for (const auto& a : running_) {
    for (Choice& c : a->choices) offer(*a, c);  // before a finished choice lets its blocks go
  }
  const size_t vocab = static_cast<size_t>(model_.config().vocab_size);
  for (size_t j = 0; j < owners_.size(); ++j) {
    auto [a, choice] = owners_[j];
    const std::span<const float> row = logits.subspan(j * vocab, vocab);
    if (choice >= 0) {
      deliver(*a, choice, row);
      continue;
    }
    // The prompt is in: the other choices fork from it and every choice draws its first token.
    for (int i = 1; i < a->request.n; ++i) {
      Choice c;
      c.seq = model_.fork(*a->choices[0].seq);
      GenerationSettings s = a->request.settings;
      s.sampling.seed += static_cast<uint64_t>(i);
      c.gen = std::make_unique<SequenceGenerator>(s, tokenizer_, a->request.prompt);
      a->choices.push_back(std::move(c));
    }
    for (int i = 0; i < a->request.n; ++i) deliver(*a, i, row);
  }
  retire();
  return true;
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats s;
  s.running = static_cast<int64_t>(running_.size());
  s.waiting = static_cast<int64_t>(waiting_.size());
  s.prompt_tokens = prompt_total_;
  s.generated_tokens = generated_total_;
  s.reserved_blocks = reserved_;
  s.total_blocks = total_blocks_;
  return s;
}

}  // namespace bringup
