// bringup compare: where a precision policy's residual stream departs from the reference — the
// project's fp32 path, or the hidden states Hugging Face saved with a reference file. For every
// decoder layer, after attention and after the MLP: Pearson correlation and largest error, and the
// first block whose correlation falls below --pcc.
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "eval/compare.h"
#include "eval/self_reference.h"

namespace bringup::cli {

namespace {

struct CompareArgs {
  ModelArgs model;
  std::string reference;
  PromptArgs prompt;
  double pcc = 0.99;
  bool json = false;
};

int run_compare(const CompareArgs& a) {
  if (!(a.pcc > 0.0 && a.pcc <= 1.0))
    throw Error("--pcc must be in (0, 1], not " + std::to_string(a.pcc));
  std::vector<int32_t> prompt = resolve_prompt(a.prompt, a.model.model);
  if (!a.reference.empty() && !prompt.empty())
    throw Error("give either --reference or a prompt, not both");
  const Checkpoint ck = Checkpoint::open(a.model.model);
  LayerBaseline base;
  if (!a.reference.empty()) {
    base = baseline_from_reference(a.reference, ck.config());
  } else {
    check_fp32_fits(ck.config(),
                    static_cast<int64_t>((prompt.empty() ? seed_default_prompt() : prompt).size()));
    auto device = make_cpu_device(a.model.threads);
    base = baseline_from_fp32(ck, *device, prompt);
  }
  ModelArgs margs = a.model;
  if (margs.max_seq_len == 0) margs.max_seq_len = static_cast<int64_t>(base.prompt.size());
  LoadedModel m = load_model(margs);
  const LayerComparison cmp = compare_layers(*m.model, base);
  const LayerRow* first = cmp.first_below(a.pcc);
  const std::string prec(precision_name(m.model->precision()));
  if (a.json) {
    std::printf("%s\n", cmp.to_json(ck.name(), prec, a.pcc).dump(2).c_str());
    return 0;
  }
  std::printf("%s under %s against %s, %lld prompt positions (residual stream after each block)\n",
              ck.name().c_str(), prec.c_str(), cmp.baseline.c_str(),
              static_cast<long long>(cmp.positions));
  std::printf("| %-28s | %-10s | %-11s |\n| %s | %s | %s |\n", "block", "PCC", "max abs err",
              std::string(28, '-').c_str(), std::string(10, '-').c_str(),
              std::string(11, '-').c_str());
  for (const LayerRow& r : cmp.rows) {
    std::printf("| %-28s | %10.6f | %11.5f |%s\n", r.block.c_str(), r.pcc, r.max_abs_err,
                r.pcc < a.pcc ? " <" : "");
  }
  if (first) {
    std::printf("first divergence: %s (PCC %.6f < %g)\n", first->block.c_str(), first->pcc, a.pcc);
  } else {
    std::printf("first divergence: none (every PCC >= %g)\n", a.pcc);
  }
  return 0;
}

}  // namespace

std::function<int()> add_compare(CLI::App& app) {
  auto args = std::make_shared<CompareArgs>();
  CLI::App* sub =
      app.add_subcommand("compare", "Layer-by-layer divergence from the fp32 path or a reference");
  add_model_args(sub, args->model);
  sub->add_option("--reference", args->reference,
                  "bringup-reference/1 file with hidden_states_npy");
  add_prompt_args(sub, args->prompt);
  sub->add_option("--pcc", args->pcc, "correlation below which a block diverges")
      ->capture_default_str();
  sub->add_flag("--json", args->json, "print JSON instead of a table");
  return [args] { return run_compare(*args); };
}

}  // namespace bringup::cli
