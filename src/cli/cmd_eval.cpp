// bringup eval: the seed's teacher forcing. The reference is a bringup-reference/1 file, or is made
// on the spot by the project's exact fp32 path from a prompt; either way the chosen precision is
// teacher-forced through it and scored with Top-1 / Top-5, the largest logit error, and — where
// the full reference logits are known — llama.cpp's KL-divergence statistics. The last line is
// the seed's YT_METRICS.
#include <cstdio>
#include <fstream>

#include "cli/commands.h"
#include "cli/common.h"
#include "eval/kl_divergence.h"
#include "eval/self_reference.h"
#include "eval/teacher_forcing.h"
#include "io/json_fields.h"
#include "io/npy.h"

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

// The reference and, per case, its full logits ([N, vocab]) where known.
struct Scoring {
  Reference ref;
  std::vector<std::vector<float>> logits;
  std::string source;
};

Scoring reference_from_file(const std::string& file, int64_t vocab) {
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

Scoring reference_from_prompt(const EvalArgs& a, std::vector<int32_t> prompt) {
  if (prompt.empty()) prompt = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};  // the seed's default
  if (a.max_new_tokens < 1) throw Error("--max-new-tokens must be at least 1");
  const Checkpoint ck = Checkpoint::open(a.model.model);
  const int64_t len = static_cast<int64_t>(prompt.size()) + a.max_new_tokens;
  check_fp32_fits(ck.config(), len);
  auto device = make_cpu_device(a.model.threads);
  auto fp32 =
      build_model(ck, *device, a.model.max_seq_len > 0 ? a.model.max_seq_len : 0, Precision::kFp32);
  Scoring s;
  s.source = "the fp32 path";
  s.ref.model = ck.name();
  s.ref.generator = "bringup fp32, greedy with KV cache";
  s.logits.emplace_back();
  s.ref.cases.push_back(
      make_reference_case(*fp32, "prompt", prompt, a.max_new_tokens, &s.logits.back()));
  return s;
}

int run_eval(const EvalArgs& a) {
  const std::vector<int32_t> prompt = resolve_prompt(a.prompt, a.model.model);
  if (!a.reference.empty() && !prompt.empty()) {
    throw Error("give either --reference or a prompt, not both");
  }
  const int64_t vocab =
      load_model_config(std::filesystem::path(a.model.model) / "config.json").vocab_size;
  const Scoring scoring = a.reference.empty() ? reference_from_prompt(a, prompt)
                                              : reference_from_file(a.reference, vocab);
  LoadedModel m = load_model(a.model);
  EvalOptions options;
  options.prefill_decode = a.prefill_decode;

  EvalTotals total;
  KlDivergence kl;
  for (size_t i = 0; i < scoring.ref.cases.size(); ++i) {
    const ReferenceCase& c = scoring.ref.cases[i];
    const std::vector<float>& full = scoring.logits[i];
    const CaseScore s =
        teacher_force(*m.model, c, options, [&](size_t step, std::span<const float> l) {
          if (!full.empty())
            kl.add({full.data() + step * vocab, static_cast<size_t>(vocab)}, l,
                   c.reference_ids[step]);
        });
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
                   std::string(precision_name(m.model->precision())) +
                   ", reference: " + scoring.source + ")",
               total.top1, total.top5, total.steps);
  std::printf("prefill %.1f tokens/s, decode %.2f tokens/s (%s)\n", prefill_tps, decode_tps,
              device_name(*m.device).c_str());

  const double steps = static_cast<double>(total.steps);
  Json metrics = {{"mode", a.prefill_decode ? "cpu-prefill-decode" : "cpu"},
                  {"model", m.checkpoint.name()},
                  {"precision", std::string(precision_name(m.model->precision()))},
                  {"top1", total.top1 / steps},
                  {"top5", total.top5 / steps},
                  {"total", total.steps},
                  {"prefill_len", total.prompt_tokens},
                  {"decode_len", total.decode_steps},
                  {"max_seq_len", m.model->max_seq_len()},
                  {"batch", 1},
                  {"cases", scoring.ref.cases.size()},
                  {"max_abs_logit_err", total.max_abs_logit_err},
                  {"prefill_tok_s", prefill_tps},
                  {"decode_tok_s", decode_tps}};
  if (kl.steps() > 0) {
    metrics["kl_steps"] = kl.steps();
    metrics["kl_mean"] = kl.mean();
    metrics["kl_mean_stderr"] = kl.mean_stderr();
    metrics["kl_p99"] = kl.percentile(99.0);
    metrics["kl_max"] = kl.max();
    metrics["rms_delta_p"] = kl.rms_delta_p();
  }
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
