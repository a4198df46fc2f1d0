// bringup eval: teacher-forced Top-1 / Top-5 against a bringup-reference/1 file, printed as the
// seed's eval.py prints them, ending with its YT_METRICS line.
#include <cstdio>
#include <fstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "eval/teacher_forcing.h"
#include "io/json_fields.h"

namespace bringup::cli {

namespace {

struct EvalArgs {
  ModelArgs model;
  std::string reference;
  bool prefill_decode = false;
  std::string metrics_json;
};

void print_scores(const std::string& title, int64_t top1, int64_t top5, int64_t steps) {
  std::printf("%s\n%s\n%s\n", title.c_str(), accuracy_line("Top-1", top1, steps).c_str(),
              accuracy_line("Top-5", top5, steps).c_str());
}

int run_eval(const EvalArgs& a) {
  const Reference ref = load_reference(a.reference);
  LoadedModel m = load_model(a.model);
  check_reference_vocab(ref, m.model->config().vocab_size, a.reference);
  EvalOptions options;
  options.prefill_decode = a.prefill_decode;

  EvalTotals total;
  for (const ReferenceCase& c : ref.cases) {
    const CaseScore s = teacher_force(*m.model, c, options);
    total.add(s);
    print_scores("case " + s.name + ": prompt " + std::to_string(s.prompt_len) + " tokens, " +
                     std::to_string(s.steps) + " scored steps",
                 s.top1, s.top5, s.steps);
    std::printf("max |logit - reference| over reference top-5: %.6f\n", s.max_abs_logit_err);
  }
  const double decode_tps =
      total.decode_seconds > 0 ? total.decode_steps / total.decode_seconds : 0;
  const double prefill_tps =
      total.prefill_seconds > 0 ? total.prompt_tokens / total.prefill_seconds : 0;
  print_scores("overall (" + std::to_string(ref.cases.size()) + " cases, " +
                   std::string(precision_name(m.model->precision())) + ")",
               total.top1, total.top5, total.steps);
  std::printf("prefill %.1f tokens/s, decode %.2f tokens/s (%s)\n", prefill_tps, decode_tps,
              device_name(*m.device).c_str());

  const double steps = static_cast<double>(total.steps);
  const Json metrics = {{"mode", a.prefill_decode ? "cpu-prefill-decode" : "cpu"},
                        {"model", m.checkpoint.dir().filename().string()},
                        {"precision", std::string(precision_name(m.model->precision()))},
                        {"top1", total.top1 / steps},
                        {"top5", total.top5 / steps},
                        {"total", total.steps},
                        {"prefill_len", total.prompt_tokens},
                        {"decode_len", total.decode_steps},
                        {"max_seq_len", m.model->max_seq_len()},
                        {"batch", 1},
                        {"cases", ref.cases.size()},
                        {"max_abs_logit_err", total.max_abs_logit_err},
                        {"prefill_tok_s", prefill_tps},
                        {"decode_tok_s", decode_tps}};
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
  CLI::App* sub = app.add_subcommand("eval", "Teacher-forced Top-1/Top-5 against a reference");
  add_model_args(sub, args->model);
  sub->add_option("--reference", args->reference, "bringup-reference/1 JSON file")->required();
  sub->add_flag("--prefill-decode", args->prefill_decode,
                "push the prompt through the decode path one token at a time");
  sub->add_option("--metrics-json", args->metrics_json, "also write the metrics to this file");
  return [args] { return run_eval(*args); };
}

}  // namespace bringup::cli
