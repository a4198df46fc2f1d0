// bringup chat: an interactive conversation. The KV cache is kept between turns: each turn renders
// the whole conversation with the chat template, and only the tokens after the longest prefix
// already in the cache are prefilled.
#include <iostream>

#include "bringup/chat.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/text_generation.h"

namespace bringup::cli {

namespace {

struct ChatArgs {
  ModelArgs model;
  SamplingArgs sampling;
  std::string system;
};

int run_chat(const ChatArgs& a) {
  const Tokenizer tokenizer = Tokenizer::load(a.model.model);
  LoadedModel m = load_model(a.model);
  const GenerationSettings s = settings_from(a.sampling, m.checkpoint, &tokenizer);
  std::vector<ChatMessage> messages;
  if (!a.system.empty()) messages.push_back({"system", a.system});
  const size_t first_turn = messages.size();
  auto seq = m.model->new_sequence();
  std::vector<int32_t> cached;  // the ids whose K/V the cache holds, in order
  std::fprintf(stderr, "chatting with %s (%s); /reset starts over, /exit or end of input quits\n",
               a.model.model.c_str(), std::string(precision_name(m.model->precision())).c_str());
  for (std::string line;;) {
    std::fprintf(stderr, "> ");
    if (!std::getline(std::cin, line) || line == "/exit") break;
    if (line == "/reset") {
      messages.resize(first_turn);
      continue;
    }
    if (line.empty()) continue;
    if (utf8_error(line)) {
      std::fprintf(stderr, "error: the input is not valid UTF-8\n");
      continue;
    }
    messages.push_back({"user", line});
    const std::vector<int32_t> ids =
        tokenizer.encode(apply_chat_template(tokenizer, messages, true));
    size_t common = 0;
    while (common < cached.size() && common < ids.size() && cached[common] == ids[common]) ++common;
    if (common == ids.size()) --common;  // at least one token to run
    seq->truncate(static_cast<int64_t>(common));
    cached.resize(common);
    GenerationResult r;
    try {
      r = stream_generation(*m.model, *seq, &tokenizer, cached, std::span(ids).subspan(common), s,
                            stdout);
    } catch (const Error& e) {
      std::fprintf(stderr, "\nerror: %s\n", e.what());
      messages.pop_back();
      continue;
    }
    std::fputc('\n', stdout);
    std::fprintf(stderr,
                 "[prefilled %zu new of %zu tokens, %.1f ms to first token, %.2f tokens/s]\n",
                 ids.size() - common, ids.size(), r.stats.time_to_first_token * 1e3,
                 r.stats.generated > 1 ? (r.stats.generated - 1) / r.stats.decode_seconds : 0.0);
    cached.insert(cached.end(), ids.begin() + static_cast<long>(common), ids.end());
    if (!r.ids.empty()) cached.insert(cached.end(), r.ids.begin(), r.ids.end() - 1);
    messages.push_back({"assistant", r.text});
  }
  return 0;
}

}  // namespace

std::function<int()> add_chat(CLI::App& app) {
  auto args = std::make_shared<ChatArgs>();
  CLI::App* sub = app.add_subcommand("chat", "Interactive chat with the model's chat template");
  add_model_args(sub, args->model, false);
  sub->add_option("--system", args->system, "system message");
  add_sampling_args(sub, args->sampling);
  return [args] { return run_chat(*args); };
}

}  // namespace bringup::cli
