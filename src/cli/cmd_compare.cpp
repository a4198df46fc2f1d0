// bringup compare: where a precision policy's residual stream departs from the reference — the
// project's fp32 path, or the hidden states Hugging Face saved with a reference file. For every
// decoder layer, after attention and after the MLP: Pearson correlation and largest error, and the
// first block whose correlation falls below --pcc.
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "eval/hidden_states.h"
#include "eval/reference.h"
#include "io/json_fields.h"
#include "io/npy.h"

namespace bringup::cli {

namespace {

struct CompareArgs {
  ModelArgs model;
  std::string reference;
  PromptArgs prompt;
  double pcc = 0.99;
  bool json = false;
};

struct Row {
  std::string name;  // as in the checkpoint's tensor names
  double pcc, max_abs_err;
};

int run_compare(const CompareArgs& a) {
  if (!(a.pcc > 0.0 && a.pcc <= 1.0))
    throw Error("--pcc must be in (0, 1], not " + std::to_string(a.pcc));
  std::vector<int32_t> prompt = resolve_prompt(a.prompt, a.model.model);
  if (!a.reference.empty() && !prompt.empty())
    throw Error("give either --reference or a prompt, not both");
  const Checkpoint ck = Checkpoint::open(a.model.model);
  const ModelConfig& c = ck.config();
  const int64_t layers = c.num_hidden_layers;

  // The baseline: hidden states from a reference file, or the fp32 path's.
  std::optional<HiddenStates> base;
  std::vector<float> hf;  // [L + 1, T, H] from the file
  std::string baseline;
  if (!a.reference.empty()) {
    const Reference ref = load_reference(a.reference);
    check_reference_vocab(ref, c.vocab_size, a.reference);
    const ReferenceCase* with = nullptr;
    for (const ReferenceCase& rc : ref.cases) {
      if (rc.hidden_states_npy && !with) with = &rc;
    }
    if (!with) throw Error(a.reference + ": no case has hidden_states_npy to compare with");
    prompt = with->prompt_ids;
    const NpyArray arr = read_npy(ref.dir / *with->hidden_states_npy);
    const std::vector<int64_t> want = {layers + 1, static_cast<int64_t>(prompt.size()),
                                       c.hidden_size};
    if (arr.shape != want) {
      throw Error((ref.dir / *with->hidden_states_npy).string() +
                  ": expected hidden states of shape [" + std::to_string(want[0]) + ", " +
                  std::to_string(want[1]) + ", " + std::to_string(want[2]) + "]");
    }
    hf = arr.data;
    baseline = a.reference + " (case " + with->name + ")";
  } else {
    if (prompt.empty()) prompt = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    check_fp32_fits(c, static_cast<int64_t>(prompt.size()));
    auto device = make_cpu_device(a.model.threads);
    auto fp32 = build_model(ck, *device, static_cast<int64_t>(prompt.size()), Precision::kFp32);
    base = capture_hidden_states(*fp32, prompt);
    baseline = "the fp32 path";
  }
  ModelArgs margs = a.model;
  if (margs.max_seq_len == 0) margs.max_seq_len = static_cast<int64_t>(prompt.size());
  LoadedModel m = load_model(margs);
  const HiddenStates got = capture_hidden_states(*m.model, prompt);

  std::vector<Row> rows;
  const size_t plane = static_cast<size_t>(got.positions * got.hidden);
  auto add = [&](const std::string& name, std::span<const float> mine, std::span<const float> ref) {
    rows.push_back({name, pearson(mine, ref), max_abs_diff(mine, ref)});
  };
  auto hf_plane = [&](int64_t i) { return std::span<const float>(hf.data() + i * plane, plane); };
  add("model.embed_tokens", got.embedding,
      base ? std::span<const float>(base->embedding) : hf_plane(0));
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l);
    if (base) {
      add(p + " attention", got.after_attention[l], base->after_attention[l]);
      add(p + " mlp", got.after_mlp[l], base->after_mlp[l]);
    } else if (l + 1 < layers) {
      add(p + " mlp", got.after_mlp[l], hf_plane(l + 1));
    }
  }
  add("model.norm", got.final_norm,
      base ? std::span<const float>(base->final_norm) : hf_plane(layers));

  const Row* first = nullptr;
  for (const Row& r : rows) {
    if (!first && r.pcc < a.pcc) first = &r;
  }
  const std::string prec(precision_name(m.model->precision()));
  if (a.json) {
    Json j = {{"model", ck.name()},         {"precision", prec},      {"baseline", baseline},
              {"positions", got.positions}, {"pcc_threshold", a.pcc}, {"rows", Json::array()}};
    for (const Row& r : rows)
      j["rows"].push_back({{"block", r.name}, {"pcc", r.pcc}, {"max_abs_err", r.max_abs_err}});
    j["first_divergence"] = first ? Json(first->name) : Json(nullptr);
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("%s under %s against %s, %lld prompt positions (residual stream after each block)\n",
              ck.name().c_str(), prec.c_str(), baseline.c_str(),
              static_cast<long long>(got.positions));
  std::printf("| %-28s | %-10s | %-11s |\n| %s | %s | %s |\n", "block", "PCC", "max abs err",
              std::string(28, '-').c_str(), std::string(10, '-').c_str(),
              std::string(11, '-').c_str());
  for (const Row& r : rows) {
    std::printf("| %-28s | %10.6f | %11.5f |%s\n", r.name.c_str(), r.pcc, r.max_abs_err,
                r.pcc < a.pcc ? " <" : "");
  }
  if (first) {
    std::printf("first divergence: %s (PCC %.6f < %g)\n", first->name.c_str(), first->pcc, a.pcc);
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
