// bringup generate: a continuation of a prompt (text, a file, or token ids; optionally wrapped in
// the chat template), streamed to stdout as it is generated.
#include <cstdio>

#include "bringup/chat.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/text_generation.h"

namespace bringup::cli {

namespace {

struct GenerateArgs {
  ModelArgs model;
  SamplingArgs sampling;
  std::string prompt, prompt_file, prompt_ids, system;
  bool chat = false;
};

int run_generate(const GenerateArgs& a) {
  const int sources = !a.prompt.empty() + !a.prompt_file.empty() + !a.prompt_ids.empty();
  if (sources != 1) throw Error("give exactly one of --prompt, --prompt-file or --prompt-ids");
  if (a.chat && !a.prompt_ids.empty()) throw Error("--chat needs a text prompt, not --prompt-ids");
  // The tokenizer is needed for text; with --prompt-ids the output falls back to ids without it.
  std::optional<Tokenizer> tokenizer;
  const bool has_tokenizer =
      std::filesystem::exists(std::filesystem::path(a.model.model) / "tokenizer.json");
  if (a.prompt_ids.empty() || has_tokenizer) tokenizer = Tokenizer::load(a.model.model);

  std::vector<int32_t> prompt;
  if (!a.prompt_ids.empty()) {
    prompt = parse_ids(a.prompt_ids, "--prompt-ids");
  } else {
    std::string text = a.prompt;
    if (!a.prompt_file.empty()) {
      text = read_file(a.prompt_file, "--prompt-file");
      if (utf8_error(text)) throw Error("--prompt-file '" + a.prompt_file + "' is not valid UTF-8");
    }
    if (a.chat) {
      std::vector<ChatMessage> messages;
      if (!a.system.empty()) messages.push_back({"system", a.system});
      messages.push_back({"user", text});
      text = apply_chat_template(*tokenizer, messages, true);
    }
    prompt = tokenizer->encode(text);
    if (prompt.empty()) throw Error("the prompt is empty");
  }
  LoadedModel m = load_model(a.model);
  const GenerationSettings s =
      settings_from(a.sampling, m.checkpoint, tokenizer ? &*tokenizer : nullptr);
  auto seq = m.model->new_sequence();
  const GenerationResult r =
      stream_generation(*m.model, *seq, tokenizer ? &*tokenizer : nullptr, {}, prompt, s, stdout);
  if (tokenizer) std::fputc('\n', stdout);
  print_summary(r, *m.model, *m.device, m.load_seconds, s.sampling);
  return 0;
}

}  // namespace

std::function<int()> add_generate(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* sub = app.add_subcommand("generate", "Continue a prompt, streaming the text");
  add_model_args(sub, args->model, false);
  sub->add_option("--prompt", args->prompt, "prompt text");
  sub->add_option("--prompt-file", args->prompt_file, "read the prompt from this file (UTF-8)");
  sub->add_option("--prompt-ids", args->prompt_ids, "prompt token ids, e.g. \"1 2 3\"");
  sub->add_flag("--chat", args->chat, "wrap the prompt in the model's chat template");
  sub->add_option("--system", args->system, "system message for --chat");
  add_sampling_args(sub, args->sampling);
  return [args] { return run_generate(*args); };
}

}  // namespace bringup::cli
