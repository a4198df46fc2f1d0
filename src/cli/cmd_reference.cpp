// bringup reference: a bringup-reference/1 file from the project's fp32 path (greedy, with the
// top-5 of every step), optionally with the full logits and the prompt's hidden states as .npy.
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "eval/hidden_states.h"
#include "eval/self_reference.h"
#include "io/npy.h"
#include "io/sha256.h"

namespace bringup::cli {

namespace {

struct ReferenceArgs {
  std::string model, out, name = "prompt";
  PromptArgs prompt;
  int64_t max_new_tokens = 20;
  bool logits = false, hidden_states = false;
  int threads = 0;
};

int run_reference(const ReferenceArgs& a) {
  const std::vector<int32_t> prompt = resolve_prompt(a.prompt, a.model);
  if (prompt.empty())
    throw Error("give a prompt: --prompt, --prompt-file, --prompt-ids-file or --prompt-ids");
  if (a.max_new_tokens < 1) throw Error("--max-new-tokens must be at least 1");
  const Checkpoint ck = Checkpoint::open(a.model);
  check_fp32_fits(ck.config(), static_cast<int64_t>(prompt.size()) + a.max_new_tokens);
  auto device = make_cpu_device(a.threads);
  auto model = build_model(ck, *device, 0, Precision::kFp32);
  for (int32_t id : prompt) {
    if (id >= ck.config().vocab_size) {
      throw Error("prompt token id " + std::to_string(id) + " is outside the model's vocabulary");
    }
  }

  Reference ref;
  ref.model = ck.name();
  ref.generator = "bringup fp32 (the project's exact path), greedy with KV cache";
  std::vector<std::filesystem::path> files;
  if (std::filesystem::exists(ck.dir() / "model.safetensors")) {
    files.push_back(ck.dir() / "model.safetensors");
  } else {  // shards, in name order
    for (const auto& e : std::filesystem::directory_iterator(ck.dir())) {
      if (e.path().extension() == ".safetensors") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
  }
  ref.weights_sha256 = sha256_files(files);
  std::vector<float> logits;
  ReferenceCase c =
      make_reference_case(*model, a.name, prompt, a.max_new_tokens, a.logits ? &logits : nullptr);
  const std::filesystem::path out(a.out);
  const std::string stem = out.stem().string();
  if (a.logits) {
    c.logits_npy = stem + "_logits_" + a.name + ".npy";
    write_npy(out.parent_path() / *c.logits_npy,
              {static_cast<int64_t>(c.reference_ids.size()), ck.config().vocab_size},
              logits.data());
  }
  if (a.hidden_states) {
    const HiddenStates hs = capture_hidden_states(*model, prompt);
    c.hidden_states_npy = stem + "_hidden_states_" + a.name + ".npy";
    write_npy(out.parent_path() / *c.hidden_states_npy,
              {ck.config().num_hidden_layers + 1, hs.positions, hs.hidden}, hs.hf_layout().data());
  }
  ref.cases.push_back(std::move(c));
  save_reference(ref, out);
  std::fprintf(stderr, "wrote %s: %zu prompt tokens, %lld reference tokens\n", a.out.c_str(),
               prompt.size(), static_cast<long long>(a.max_new_tokens));
  return 0;
}

}  // namespace

std::function<int()> add_reference(CLI::App& app) {
  auto args = std::make_shared<ReferenceArgs>();
  CLI::App* sub =
      app.add_subcommand("reference", "Write a bringup-reference/1 file from the fp32 path");
  add_model_dir_arg(sub, args->model, true);
  add_prompt_args(sub, args->prompt);
  sub->add_option("--max-new-tokens", args->max_new_tokens, "greedy tokens to record")
      ->capture_default_str();
  sub->add_option("--name", args->name, "case name")->capture_default_str();
  sub->add_flag("--logits", args->logits, "also write every step's logits (.npy beside --out)");
  sub->add_flag("--hidden-states", args->hidden_states,
                "also write the prompt's hidden states (.npy)");
  sub->add_option("--threads", args->threads, "CPU threads (default: every core)");
  sub->add_option("--out", args->out, "reference JSON file to write")->required();
  return [args] { return run_reference(*args); };
}

}  // namespace bringup::cli
