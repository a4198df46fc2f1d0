#include "eval/self_reference.h"

#include "bringup/error.h"
#include "eval/teacher_forcing.h"
#include "runtime/generate.h"

namespace bringup {

std::vector<int32_t> seed_default_prompt() {
  return {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
}

ReferenceCase make_reference_case(Model& model, const std::string& name,
                                  std::span<const int32_t> prompt, int64_t n,
                                  std::vector<float>* logits) {
  if (n < 1) throw Error("a reference needs at least one new token");
  ReferenceCase c;
  c.name = name;
  c.prompt_ids.assign(prompt.begin(), prompt.end());
  const size_t vocab = static_cast<size_t>(model.config().vocab_size);
  if (logits) logits->clear();
  GenerateOptions o;
  o.max_new_tokens = n;
  o.pick = [&](std::span<const float> l) {
    const std::vector<int32_t> top = top_k_ids(l, 5);
    std::array<int32_t, 5> ids{};
    std::array<float, 5> values{};
    for (size_t j = 0; j < top.size(); ++j) {
      ids[j] = top[j];
      values[j] = l[top[j]];
    }
    c.top5_ids.push_back(ids);
    c.top5_logits.push_back(values);
    if (logits) logits->insert(logits->end(), l.begin(), l.begin() + vocab);
    return top[0];
  };
  auto seq = model.new_sequence();
  c.reference_ids = generate(model, *seq, prompt, o, nullptr);
  return c;
}

}  // namespace bringup
