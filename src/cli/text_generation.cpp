#include "cli/text_generation.h"

#include <random>

namespace bringup::cli {

void add_sampling_args(CLI::App* app, SamplingArgs& a) {
  app->add_option("--max-new-tokens", a.max_new_tokens,
                  "tokens to generate (default: generation_config.json, else 256)");
  a.temperature_opt =
      app->add_option("--temperature", a.temperature,
                      "sampling temperature; 0 is greedy (default: generation_config.json)");
  a.top_k_opt = app->add_option("--top-k", a.top_k, "keep the k most likely tokens (0: off)");
  a.top_p_opt = app->add_option("--top-p", a.top_p, "nucleus sampling threshold (1: off)");
  a.min_p_opt =
      app->add_option("--min-p", a.min_p, "drop tokens below min_p x the top probability");
  a.penalty_opt = app->add_option("--repetition-penalty", a.repetition_penalty,
                                  "divide the logits of tokens already seen (1: off)");
  a.seed_opt = app->add_option("--seed", a.seed, "random seed (default: a fresh one, printed)");
  app->add_option("--stop", a.stop, "stop when this text appears (repeatable)");
}

GenerationSettings settings_from(const SamplingArgs& a, const Checkpoint& ck,
                                 const Tokenizer* tok) {
  GenerationSettings s = default_generation_settings(ck.generation_config(), tok);
  if (a.temperature_opt->count()) {
    if (a.temperature < 0) throw Error("--temperature must not be negative");
    s.sampling.temperature = a.temperature;
    s.sampling.do_sample = a.temperature > 0;
  }
  if (a.top_k_opt->count()) {
    if (a.top_k < 0) throw Error("--top-k must not be negative");
    s.sampling.top_k = a.top_k;
  }
  if (a.top_p_opt->count()) {
    if (!(a.top_p > 0 && a.top_p <= 1)) throw Error("--top-p must be in (0, 1]");
    s.sampling.top_p = a.top_p;
  }
  if (a.min_p_opt->count()) {
    if (!(a.min_p >= 0 && a.min_p <= 1)) throw Error("--min-p must be in [0, 1]");
    s.sampling.min_p = a.min_p;
  }
  if (a.penalty_opt->count()) {
    if (!(a.repetition_penalty > 0)) throw Error("--repetition-penalty must be positive");
    s.sampling.repetition_penalty = a.repetition_penalty;
  }
  s.sampling.seed = a.seed_opt->count() ? a.seed : std::random_device{}();
  if (a.max_new_tokens < 0) throw Error("--max-new-tokens must be positive");
  if (a.max_new_tokens > 0) s.max_new_tokens = a.max_new_tokens;
  s.stop = a.stop;
  return s;
}

GenerationResult stream_generation(Model& model, Sequence& seq, const Tokenizer* tokenizer,
                                   std::span<const int32_t> history,
                                   std::span<const int32_t> prompt, const GenerationSettings& s,
                                   std::FILE* out) {
  std::vector<int32_t> seen(history.begin(), history.end());
  seen.insert(seen.end(), prompt.begin(), prompt.end());
  SequenceGenerator gen(s, tokenizer, seen);
  GenerateOptions o;
  o.max_new_tokens = s.max_new_tokens;
  o.pick = [&](std::span<const float> logits) { return gen.pick(logits); };
  GenerationResult r;
  r.ids = generate(
      model, seq, prompt, o,
      [&](int32_t id) {
        if (!tokenizer) {  // no tokenizer: the ids themselves
          std::fprintf(out, gen.ids().size() == 1 ? "%d" : " %d", id);
        } else {
          std::fputs(gen.piece().c_str(), out);
        }
        std::fflush(out);
        return !gen.finished();
      },
      &r.stats);
  r.stats.stopped_by_eos = gen.finish_reason() == FinishReason::kEndToken;
  r.text = gen.text();
  if (!tokenizer) std::fputc('\n', out);
  return r;
}

void print_summary(const GenerationResult& r, const Model& model, const Device& device,
                   double load_seconds, const SamplingParams& sampling) {
  const double tps = r.stats.generated > 1 && r.stats.decode_seconds > 0
                         ? (r.stats.generated - 1) / r.stats.decode_seconds
                         : 0.0;
  std::fprintf(
      stderr,
      "\n[%s, %s, %s seed %llu] prompt %lld tokens, generated %lld%s; load %.2f s, time "
      "to first token %.1f ms, decode %.2f tokens/s\n",
      device_name(device).c_str(), std::string(precision_name(model.precision())).c_str(),
      sampling.greedy() ? "greedy," : "sampling,", static_cast<unsigned long long>(sampling.seed),
      static_cast<long long>(r.stats.prompt_tokens), static_cast<long long>(r.stats.generated),
      r.stats.stopped_by_eos ? " (end token)" : "", load_seconds, r.stats.time_to_first_token * 1e3,
      tps);
}

}  // namespace bringup::cli
