// bringup generate: a continuation of a prompt (text, a file, or token ids; optionally wrapped in
// the chat template), streamed to stdout as it is generated; or of many prompts from a JSON-lines
// file, generated together in batched steps, one JSON line out per line in.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bringup/chat.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/text_generation.h"

namespace bringup::cli {

namespace {

struct GenerateArgs {
  ModelArgs model;
  SamplingArgs sampling;
  std::string prompt, prompt_file, prompt_ids, system, prompts_jsonl;
  bool chat = false;
};

// One request per line: {"prompt_ids": [...]} or {"prompt": "text"}, and "max_new_tokens".
std::vector<GenerationRequest> read_requests(const std::string& path, const Tokenizer* tokenizer,
                                             const GenerationSettings& defaults) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("--prompts-jsonl: cannot open '" + path + "'");
  std::vector<GenerationRequest> requests;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + " line " + std::to_string(n);
    if (utf8_error(line)) throw Error(where + ": not valid UTF-8");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      throw Error(where + ": malformed JSON");
    }
    if (!j.is_object()) throw Error(where + ": expected a JSON object");
    GenerationRequest r;
    r.settings = defaults;
    for (const auto& [key, value] : j.items()) {
      if (key == "prompt_ids") {
        if (!value.is_array() || value.empty()) {
          throw Error(where + ": field 'prompt_ids' must be a non-empty array of token ids");
        }
        for (const auto& id : value) {
          if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
            throw Error(where + ": field 'prompt_ids' must hold non-negative integer ids");
          }
          r.prompt.push_back(static_cast<int32_t>(id.get<int64_t>()));
        }
      } else if (key == "prompt") {
        if (!value.is_string()) throw Error(where + ": field 'prompt' must be a string");
        if (!tokenizer) throw Error(where + ": field 'prompt' needs the model's tokenizer.json");
        r.prompt = tokenizer->encode(value.get<std::string>());
        if (r.prompt.empty()) throw Error(where + ": field 'prompt' encodes to no tokens");
      } else if (key == "max_new_tokens") {
        if (!value.is_number_integer() || value.get<int64_t>() < 1 ||
            value.get<int64_t>() > (int64_t{1} << 30)) {
          throw Error(where + ": field 'max_new_tokens' must be a positive integer");
        }
        r.settings.max_new_tokens = value.get<int64_t>();
      } else {
        throw Error(where + ": unknown field '" + key +
                    "' (expected prompt or prompt_ids, and max_new_tokens)");
      }
    }
    if (j.contains("prompt") == j.contains("prompt_ids")) {
      throw Error(where + ": give exactly one of 'prompt' and 'prompt_ids'");
    }
    requests.push_back(std::move(r));
  }
  if (requests.empty()) throw Error("--prompts-jsonl: '" + path + "' holds no prompts");
  return requests;
}

int run_batch(const GenerateArgs& a) {
  if (!a.prompt.empty() || !a.prompt_file.empty() || !a.prompt_ids.empty() || a.chat) {
    throw Error("--prompts-jsonl takes no --prompt, --prompt-file, --prompt-ids or --chat");
  }
  check_model_dir(a.model.model);
  std::optional<Tokenizer> tokenizer;
  tokenizer = Tokenizer::load_if_present(a.model.model);
  const Tokenizer* tok = tokenizer ? &*tokenizer : nullptr;
  // The requests are read (and refused) before the model is loaded.
  const Checkpoint ck = Checkpoint::open(a.model.model);
  const GenerationSettings defaults = settings_from(a.sampling, ck, tok);
  const std::vector<GenerationRequest> requests = read_requests(a.prompts_jsonl, tok, defaults);
  LoadedModel m = load_model(a.model);
  size_t next = 0;
  std::vector<std::optional<nlohmann::json>> done(requests.size());
  const auto print_ready = [&] {
    for (; next < done.size() && done[next]; ++next) {
      std::printf("%s\n", done[next]->dump().c_str());
    }
    std::fflush(stdout);
  };
  int64_t generated = 0;
  const auto t0 = std::chrono::steady_clock::now();
  generate_batch(*m.model, tok, requests, [&](size_t i, const GenerationOutput& o) {
    nlohmann::json j = {{"index", i},
                        {"prompt_tokens", requests[i].prompt.size()},
                        {"ids", o.ids},
                        {"finish_reason", finish_reason_name(o.finish)}};
    if (tok) j["text"] = o.text;
    done[i] = std::move(j);
    generated += static_cast<int64_t>(o.ids.size());
    print_ready();
  });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "[%s, %s] %zu prompts, generated %lld tokens in %.2f s (%.2f tokens/s)\n",
               device_name(*m.device).c_str(),
               std::string(precision_name(m.model->precision())).c_str(), requests.size(),
               static_cast<long long>(generated), seconds, generated / seconds);
  return 0;
}

int run_generate(const GenerateArgs& a) {
  if (!a.prompts_jsonl.empty()) return run_batch(a);
  check_model_dir(a.model.model);
  const int sources = !a.prompt.empty() + !a.prompt_file.empty() + !a.prompt_ids.empty();
  if (sources != 1) throw Error("give exactly one of --prompt, --prompt-file or --prompt-ids");
  if (a.chat && !a.prompt_ids.empty()) throw Error("--chat needs a text prompt, not --prompt-ids");
  // The tokenizer is needed for text; with --prompt-ids the output falls back to ids without it.
  std::optional<Tokenizer> tokenizer;
  tokenizer = Tokenizer::load_if_present(a.model.model);
  if (!tokenizer && a.prompt_ids.empty()) tokenizer = Tokenizer::load(a.model.model);  // its error

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
  sub->add_option("--prompts-jsonl", args->prompts_jsonl,
                  "generate for every line {\"prompt\": text} or {\"prompt_ids\": [...]} "
                  "(optional \"max_new_tokens\") together; one JSON line out per line in");
  sub->add_flag("--chat", args->chat, "wrap the prompt in the model's chat template");
  sub->add_option("--system", args->system, "system message for --chat");
  add_sampling_args(sub, args->sampling);
  return [args] { return run_generate(*args); };
}

}  // namespace bringup::cli
