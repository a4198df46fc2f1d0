#include "runtime/generate.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <string>

#include "bringup/error.h"
#include "runtime/kv_cache.h"

namespace bringup {

int32_t argmax(std::span<const float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

std::vector<int32_t> generate(Model& model, Sequence& seq, std::span<const int32_t> prompt,
                              const GenerateOptions& o, const TokenFn& on_token,
                              GenerateStats* stats) {
  using Clock = std::chrono::steady_clock;
  GenerateStats st;
  st.prompt_tokens = static_cast<int64_t>(prompt.size());
  check_seq_len(seq.length() + static_cast<int64_t>(prompt.size()) + o.max_new_tokens - 1,
                model.max_seq_len(), [&] {
                  return "prompt of " + std::to_string(prompt.size()) + " tokens plus " +
                         std::to_string(o.max_new_tokens) + " new tokens";
                });
  const auto pick = [&](std::span<const float> logits) {
    return o.pick ? o.pick(logits) : argmax(logits);
  };
  std::vector<int32_t> out;
  const auto t0 = Clock::now();
  std::span<const float> logits = model.prefill(seq, prompt);
  Clock::time_point t1 = t0;
  for (int64_t i = 0; i < o.max_new_tokens; ++i) {
    if (i > 0) logits = model.decode(seq, out.back());
    const int32_t id = pick(logits);
    if (i == 0) {
      t1 = Clock::now();
      st.time_to_first_token = std::chrono::duration<double>(t1 - t0).count();
    }
    out.push_back(id);
    const bool eos = std::find(o.eos_ids.begin(), o.eos_ids.end(), id) != o.eos_ids.end();
    if ((on_token && !on_token(id)) || eos) {
      st.stopped_by_eos = eos;
      break;
    }
  }
  st.generated = static_cast<int64_t>(out.size());
  st.decode_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
  if (stats) *stats = st;
  return out;
}

namespace {

using Clock = std::chrono::steady_clock;

struct Running {
  size_t index;
  std::unique_ptr<Sequence> seq;
  SequenceGenerator gen;
  int64_t prefilled = 0;  // prompt tokens already in the cache
  int64_t blocks = 0;     // blocks it may need at most
  Clock::time_point first_token;
};

int64_t blocks_for(int64_t positions, int64_t block_size) {
  return (positions + block_size - 1) / block_size;
}

}  // namespace

std::vector<GenerationOutput> generate_batch(
    Model& model, const Tokenizer* tokenizer, std::span<const GenerationRequest> requests,
    const std::function<void(size_t, const GenerationOutput&)>& on_done) {
  const KvPoolStats pool = model.kv_pool();
  std::vector<GenerationOutput> out(requests.size());
  std::vector<int64_t> need(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const GenerationRequest& r = requests[i];
    if (r.prompt.empty()) throw Error("request " + std::to_string(i) + " has an empty prompt");
    if (r.settings.max_new_tokens < 1) {
      throw Error("request " + std::to_string(i) + ": max_new_tokens must be at least 1");
    }
    const int64_t positions = static_cast<int64_t>(r.prompt.size()) + r.settings.max_new_tokens - 1;
    check_seq_len(positions, model.max_seq_len(), [&] {
      return "request " + std::to_string(i) + ": prompt of " + std::to_string(r.prompt.size()) +
             " tokens plus " + std::to_string(r.settings.max_new_tokens) + " new tokens";
    });
    need[i] = blocks_for(positions, pool.block_size);
    if (need[i] > pool.total_blocks) {
      throw Error("request " + std::to_string(i) + " needs " + std::to_string(positions) +
                  " KV positions, more than the whole kv budget of " +
                  std::to_string(pool.budget_tokens) + " tokens");
    }
  }

  const auto t0 = Clock::now();
  std::deque<size_t> waiting;
  for (size_t i = 0; i < requests.size(); ++i) waiting.push_back(i);
  std::vector<Running> running;
  int64_t reserved = 0;  // blocks the running sequences may need at most
  std::vector<BatchRow> rows;
  std::vector<size_t> owner;  // per row with logits: index into running
  while (!waiting.empty() || !running.empty()) {
    // Admit in request order while the pool can hold each one's worst case.
    while (!waiting.empty() && reserved + need[waiting.front()] <= pool.total_blocks) {
      const size_t i = waiting.front();
      waiting.pop_front();
      running.push_back({i,
                         model.new_sequence(),
                         SequenceGenerator(requests[i].settings, tokenizer, requests[i].prompt),
                         0,
                         need[i],
                         {}});
      reserved += need[i];
    }
    // Decode rows first, so a long prompt never stalls the running sequences; then prompt chunks.
    rows.clear();
    owner.clear();
    for (size_t r = 0; r < running.size(); ++r) {
      Running& s = running[r];
      if (s.prefilled == static_cast<int64_t>(requests[s.index].prompt.size())) {
        rows.push_back({s.seq.get(), s.gen.ids().back(), s.seq->length(), true});
        owner.push_back(r);
      }
    }
    for (size_t r = 0; r < running.size(); ++r) {
      Running& s = running[r];
      const std::vector<int32_t>& prompt = requests[s.index].prompt;
      const int64_t left = static_cast<int64_t>(prompt.size()) - s.prefilled;
      const int64_t room = model.max_step_rows() - static_cast<int64_t>(rows.size());
      if (left == 0 || room == 0) continue;
      const int64_t n = std::min(left, room);
      for (int64_t j = 0; j < n; ++j) {
        const bool last = s.prefilled + j + 1 == static_cast<int64_t>(prompt.size());
        rows.push_back({s.seq.get(), prompt[s.prefilled + j], s.prefilled + j, last});
        if (last) owner.push_back(r);
      }
      s.prefilled += n;
    }
    const std::span<const float> logits = model.step(rows);
    const size_t vocab = static_cast<size_t>(model.config().vocab_size);
    for (size_t j = 0; j < owner.size(); ++j) {
      Running& s = running[owner[j]];
      s.gen.pick(logits.subspan(j * vocab, vocab));
      if (s.gen.ids().size() == 1) s.first_token = Clock::now();
    }
    // Finished sequences leave and return their blocks.
    for (size_t r = 0; r < running.size();) {
      Running& s = running[r];
      if (!s.gen.finished()) {
        ++r;
        continue;
      }
      GenerationOutput& o = out[s.index];
      o.ids = s.gen.ids();
      o.text = s.gen.text();
      o.finish = s.gen.finish_reason();
      o.stats.prompt_tokens = static_cast<int64_t>(requests[s.index].prompt.size());
      o.stats.generated = static_cast<int64_t>(o.ids.size());
      o.stats.stopped_by_eos = o.finish == FinishReason::kEndToken;
      o.stats.time_to_first_token = std::chrono::duration<double>(s.first_token - t0).count();
      o.stats.decode_seconds = std::chrono::duration<double>(Clock::now() - s.first_token).count();
      if (on_done) on_done(s.index, o);
      reserved -= s.blocks;
      running.erase(running.begin() + static_cast<std::ptrdiff_t>(r));
    }
  }
  return out;
}

}  // namespace bringup
