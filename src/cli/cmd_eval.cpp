// bringup eval: the seed's teacher forcing. The reference is a bringup-reference/1 file, or is made
// on the spot by the project's exact fp32 path from a prompt; either way the chosen precision is
// teacher-forced through it and scored with Top-1 / Top-5, the largest logit error, and — where
// the full reference logits are known — llama.cpp's KL-divergence statistics. The last line is
// the seed's YT_METRICS.
#include <cstdio>
#include <fstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "eval/evaluate.h"
#include "eval/self_reference.h"
#include "io/json_fields.h"

namespace bringup::cli {

namespace {

struct EvalArgs {
  ModelArgs model;
  std::string reference;
  PromptArgs prompt;
  int64_t max_new_tokens = 20;
  bool prefill_decode = false;
  std::string metrics_json;
};

void print_scores(const std::string& title, int64_t top1, int64_t top5, int64_t steps) {
  std::printf("%s\n%s\n%s\n", title.c_str(), accuracy_line("Top-1", top1, steps).c_str(),
              accuracy_line("Top-5", top5, steps).c_str());
}

int run_eval(const EvalArgs& a) {
  const std::vector<int32_t> prompt = resolve_prompt(a.prompt, a.model.model);
  if (!a.reference.empty() && !prompt.empty()) {
    throw Error("give either --reference or a prompt, not both");
  }
  const int64_t vocab = load_checkpoint_config(a.model.model).vocab_size;
  Scoring scoring;
  if (a.reference.empty()) {
    const Checkpoint ck = Checkpoint::open(a.model.model);
    const size_t prompt_len = (prompt.empty() ? seed_default_prompt() : prompt).size();
    check_fp32_fits(ck.config(),
                    static_cast<int64_t>(prompt_len) + std::max<int64_t>(a.max_new_tokens, 1));
    auto device = make_cpu_device(a.model.threads);
    scoring = scoring_from_fp32(ck, *device, prompt, a.max_new_tokens, a.model.max_seq_len);
  } else {
    scoring = scoring_from_file(a.reference, vocab);
  }
  LoadedModel m = load_model(a.model);
  EvalOptions options;
  options.prefill_decode = a.prefill_decode;
  const EvalReport r = evaluate(*m.model, scoring, options, m.checkpoint.name());

  for (const CaseScore& s : r.cases) {
    print_scores("case " + s.name + ": prompt " + std::to_string(s.prompt_len) + " tokens, " +
                     std::to_string(s.steps) + " scored steps",
                 s.top1, s.top5, s.steps);
    std::printf("max |logit - reference| over reference top-5: %.6f\n", s.max_abs_logit_err);
  }
  const KlDivergence& kl = r.kl;
  if (kl.steps() > 0) {
    std::printf("KL divergence from %s over %zu steps with full reference logits:\n",
                scoring.source.c_str(), kl.steps());
    std::printf("Mean    KLD: %10.6f ± %10.6f\n", kl.mean(), kl.mean_stderr());
    std::printf("99.0%%   KLD: %10.6f\n", kl.percentile(99.0));
    std::printf("Maximum KLD: %10.6f\n", kl.max());
    std::printf("RMS Δp     : %10.4f ± %.4f %%\n", 100.0 * kl.rms_delta_p(),
                100.0 * kl.rms_delta_p_stderr());
  }
  print_scores("overall (" + std::to_string(scoring.ref.cases.size()) + " case" +
                   (scoring.ref.cases.size() == 1 ? "" : "s") + ", " +
                   std::string(precision_name(m.model->precision())) + ", KV cache " +
                   std::string(kv_precision_name(m.model->kv_precision(), m.model->precision())) +
                   ", reference: " + scoring.source + ")",
               r.total.top1, r.total.top5, r.total.steps);
  std::printf("prefill %.1f tokens/s, decode %.2f tokens/s (%s)\n",
              r.metrics["prefill_tok_s"].get<double>(), r.metrics["decode_tok_s"].get<double>(),
              device_name(*m.device).c_str());
  const Json& metrics = r.metrics;
  if (!a.metrics_json.empty()) {
    std::ofstream out(a.metrics_json);
    out << metrics.dump(2) << "\n";
    if (!out) throw Error(a.metrics_json + ": cannot write metrics");
  }
  std::printf("YT_METRICS=%s\n", metrics.dump().c_str());
  return 0;
}

}  // namespace

std::function<int()> add_eval(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* sub = app.add_subcommand(
      "eval", "Teacher-forced Top-1/Top-5 against a reference file or the fp32 path on a prompt");
  add_model_args(sub, args->model);
  sub->add_option("--reference", args->reference, "bringup-reference/1 JSON file");
  add_prompt_args(sub, args->prompt);
  sub->add_option("--max-new-tokens", args->max_new_tokens,
                  "reference tokens made by the fp32 path from a prompt")
      ->capture_default_str();
  sub->add_flag("--prefill-decode", args->prefill_decode,
                "push the prompt through the decode path one token at a time");
  sub->add_option("--metrics-json", args->metrics_json, "also write the metrics to this file");
  return [args] { return run_eval(*args); };
}

}  // namespace bringup::cli
