#include "runtime/generate.h"

#include <algorithm>
#include <chrono>

#include "bringup/error.h"

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
  if (seq.length() + static_cast<int64_t>(prompt.size()) + o.max_new_tokens - 1 >
      model.max_seq_len()) {
    throw Error("prompt of " + std::to_string(prompt.size()) + " tokens plus " +
                std::to_string(o.max_new_tokens) + " new tokens exceeds max_seq_len " +
                std::to_string(model.max_seq_len()) + " (raise --max-seq-len)");
  }
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

}  // namespace bringup
