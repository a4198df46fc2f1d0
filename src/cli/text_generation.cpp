#include "cli/text_generation.h"

#include <random>

#include "runtime/stop_strings.h"

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
  const GenerationConfig& g = ck.generation_config();
  GenerationSettings s;
  s.sampling = SamplingParams::from(g);
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
  s.max_new_tokens = a.max_new_tokens > 0 ? a.max_new_tokens : g.max_new_tokens.value_or(256);
  s.eos_ids = g.eos_token_ids;
  if (s.eos_ids.empty() && tok && !tok->eos_token().empty()) {
    if (auto id = tok->token_id(tok->eos_token())) s.eos_ids.push_back(*id);
  }
  s.stop = a.stop;
  return s;
}

GenerationResult stream_generation(Model& model, Sequence& seq, const Tokenizer* tokenizer,
                                   std::span<const int32_t> history,
                                   std::span<const int32_t> prompt, const GenerationSettings& s,
                                   std::FILE* out) {
  GenerationResult r;
  Sampler sampler(s.sampling);
  std::vector<int32_t> seen(history.begin(), history.end());
  seen.insert(seen.end(), prompt.begin(), prompt.end());
  GenerateOptions o;
  o.max_new_tokens = s.max_new_tokens;
  o.eos_ids = s.eos_ids;
  o.pick = [&](std::span<const float> logits) {
    const int32_t id = sampler.pick(logits, seen);
    seen.push_back(id);
    return id;
  };
  std::optional<StreamDecoder> decoder;
  if (tokenizer) decoder.emplace(*tokenizer);
  StopStrings stops(s.stop);
  auto show = [&](const std::string& text) {
    r.text += text;
    std::fputs(text.c_str(), out);
    std::fflush(out);
  };
  const auto is_eos = [&](int32_t id) {
    return std::find(s.eos_ids.begin(), s.eos_ids.end(), id) != s.eos_ids.end();
  };
  bool first = true;
  r.ids = generate(
      model, seq, prompt, o,
      [&](int32_t id) {
        if (!decoder) {  // no tokenizer: the ids themselves
          std::fprintf(out, first ? "%d" : " %d", id);
          first = false;
          std::fflush(out);
          return true;
        }
        if (is_eos(id)) return true;  // its text (<|im_end|>) is not shown
        show(stops.push(decoder->push(id)));
        return !stops.stopped();
      },
      &r.stats);
  if (decoder) {
    if (!stops.stopped()) show(stops.push(decoder->flush()) + stops.flush());
  } else {
    std::fputc('\n', out);
  }
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
