// bringup generate: greedy continuation of a prompt given as token ids.
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "runtime/generate.h"

namespace bringup::cli {

namespace {

struct GenerateArgs {
  ModelArgs model;
  std::string prompt_ids;
  int64_t max_new_tokens = 32;
};

int run_generate(const GenerateArgs& a) {
  const std::vector<int32_t> prompt = parse_ids(a.prompt_ids, "--prompt-ids");
  if (a.max_new_tokens < 1) throw Error("--max-new-tokens must be at least 1");
  LoadedModel m = load_model(a.model);
  GenerateOptions o;
  o.max_new_tokens = a.max_new_tokens;
  o.eos_ids = m.checkpoint.generation_config().eos_token_ids;
  auto seq = m.model->new_sequence();
  GenerateStats st;
  bool first = true;
  generate(
      *m.model, *seq, prompt, o,
      [&](int32_t id) {
        std::printf(first ? "%d" : " %d", id);
        std::fflush(stdout);
        first = false;
        return true;
      },
      &st);
  std::printf("\n");
  const double tps = st.generated > 1 ? (st.generated - 1) / st.decode_seconds : 0.0;
  std::fprintf(stderr,
               "%s, %s: prompt %lld tokens, generated %lld, load %.2f s, time to first token "
               "%.1f ms, decode %.2f tokens/s\n",
               device_name(*m.device).c_str(),
               std::string(precision_name(m.model->precision())).c_str(),
               static_cast<long long>(st.prompt_tokens), static_cast<long long>(st.generated),
               m.load_seconds, st.time_to_first_token * 1e3, tps);
  return 0;
}

}  // namespace

std::function<int()> add_generate(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* sub = app.add_subcommand("generate", "Greedy generation from token ids");
  add_model_args(sub, args->model);
  sub->add_option("--prompt-ids", args->prompt_ids, "prompt token ids, e.g. \"1 2 3\"")->required();
  sub->add_option("--max-new-tokens", args->max_new_tokens, "tokens to generate")
      ->capture_default_str();
  return [args] { return run_generate(*args); };
}

}  // namespace bringup::cli
