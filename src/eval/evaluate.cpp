#include "eval/evaluate.h"

#include "eval/self_reference.h"
#include "io/npy.h"

namespace bringup {

Scoring scoring_from_file(const std::string& file, int64_t vocab) {
  Scoring s;
  s.ref = load_reference(file);
  s.source = file;
  check_reference_vocab(s.ref, vocab, file);
  for (const ReferenceCase& c : s.ref.cases) {
    std::vector<float> l;
    if (c.logits_npy) {
      const NpyArray a = read_npy(s.ref.dir / *c.logits_npy);
      if (a.shape.size() != 2 || a.shape[0] != static_cast<int64_t>(c.reference_ids.size()) ||
          a.shape[1] != vocab) {
        throw Error((s.ref.dir / *c.logits_npy).string() + ": expected logits of shape [" +
                    std::to_string(c.reference_ids.size()) + ", " + std::to_string(vocab) + "]");
      }
      l = a.data;
    }
    s.logits.push_back(std::move(l));
  }
  return s;
}

Scoring scoring_from_fp32(const Checkpoint& ck, Device& device, std::vector<int32_t> prompt,
                          int64_t max_new_tokens, int64_t max_seq_len) {
  if (prompt.empty()) prompt = seed_default_prompt();
  if (max_new_tokens < 1) throw Error("--max-new-tokens must be at least 1");
  auto fp32 = build_model(ck, device, max_seq_len, Precision::kFp32);
  Scoring s;
  s.source = "the fp32 path";
  s.ref.model = ck.name();
  s.ref.generator = "bringup fp32, greedy with KV cache";
  s.logits.emplace_back();
  s.ref.cases.push_back(
      make_reference_case(*fp32, "prompt", prompt, max_new_tokens, &s.logits.back()));
  return s;
}

EvalReport evaluate(Model& model, const Scoring& scoring, const EvalOptions& options,
                    const std::string& model_name) {
  const int64_t vocab = model.config().vocab_size;
  EvalReport r;
  r.source = scoring.source;
  for (size_t i = 0; i < scoring.ref.cases.size(); ++i) {
    const ReferenceCase& c = scoring.ref.cases[i];
    const std::vector<float>* full = i < scoring.logits.size() ? &scoring.logits[i] : nullptr;
    if (full && !full->empty() && full->size() != c.reference_ids.size() * vocab) {
      throw Error(scoring.source + ": case " + c.name + " has " + std::to_string(full->size()) +
                  " reference logits, expected " + std::to_string(c.reference_ids.size()) + " x " +
                  std::to_string(vocab));
    }
    const CaseScore s =
        teacher_force(model, c, options, [&](size_t step, std::span<const float> l) {
          if (full && !full->empty())
            r.kl.add({full->data() + step * vocab, static_cast<size_t>(vocab)}, l,
                     c.reference_ids[step]);
        });
    r.total.add(s);
    r.cases.push_back(s);
  }
  const EvalTotals& t = r.total;
  const double decode_tps = t.decode_seconds > 0 ? t.decode_steps / t.decode_seconds : 0;
  const double prefill_tps = t.prefill_seconds > 0 ? t.prompt_tokens / t.prefill_seconds : 0;
  const double steps = static_cast<double>(t.steps);
  r.metrics = {
      {"mode", options.prefill_decode ? "cpu-prefill-decode" : "cpu"},
      {"model", model_name},
      {"precision", std::string(precision_name(model.precision()))},
      {"kv_precision", std::string(kv_precision_name(model.kv_precision(), model.precision()))},
      {"top1", t.top1 / steps},
      {"top5", t.top5 / steps},
      {"total", t.steps},
      {"prefill_len", t.prompt_tokens},
      {"decode_len", t.decode_steps},
      {"max_seq_len", model.max_seq_len()},
      {"batch", 1},
      {"cases", scoring.ref.cases.size()},
      {"max_abs_logit_err", t.max_abs_logit_err},
      {"prefill_tok_s", prefill_tps},
      {"decode_tok_s", decode_tps}};
  if (r.kl.steps() > 0) {
    r.metrics["kl_steps"] = r.kl.steps();
    r.metrics["kl_mean"] = r.kl.mean();
    r.metrics["kl_mean_stderr"] = r.kl.mean_stderr();
    r.metrics["kl_p99"] = r.kl.percentile(99.0);
    r.metrics["kl_max"] = r.kl.max();
    r.metrics["rms_delta_p"] = r.kl.rms_delta_p();
  }
  return r;
}

}  // namespace bringup
