#include "runtime/generate.h"

#include <algorithm>
#include <chrono>
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

std::vector<GenerationOutput> generate_batch(
    Model& model, const Tokenizer* tokenizer, std::span<const GenerationRequest> requests,
    const std::function<void(size_t, const GenerationOutput&)>& on_done) {
  using Clock = std::chrono::steady_clock;
  Scheduler scheduler(model, tokenizer);
  std::vector<GenerationOutput> out(requests.size());
  std::vector<Clock::time_point> first(requests.size());
  const auto t0 = Clock::now();
  for (size_t i = 0; i < requests.size(); ++i) {
    if (requests[i].n != 1) throw Error("request " + std::to_string(i) + ": n must be 1 here");
    auto on_event = [&, i](const GenerationEvent& e) {
      GenerationOutput& o = out[i];
      if (o.ids.empty()) {
        first[i] = Clock::now();
        o.stats.time_to_first_token = std::chrono::duration<double>(first[i] - t0).count();
      }
      o.ids.push_back(e.token);
      o.text += e.piece;
      if (!e.finished) return;
      o.finish = e.finish;
      o.stats.prompt_tokens = e.prompt_tokens;
      o.stats.generated = e.generated;
      o.stats.stopped_by_eos = e.finish == FinishReason::kEndToken;
      o.stats.decode_seconds = std::chrono::duration<double>(Clock::now() - first[i]).count();
      if (on_done) on_done(i, o);
    };
    try {
      scheduler.submit(requests[i], on_event);
    } catch (const Error& e) {
      throw Error("request " + std::to_string(i) + ": " + e.what());
    }
  }
  while (scheduler.step()) {
  }
  return out;
}

}  // namespace bringup
