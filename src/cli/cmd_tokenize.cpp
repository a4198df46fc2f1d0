// bringup tokenize / detokenize: text <-> ids with the checkpoint's tokenizer. Plain mode takes
// the argument (or all of stdin); --jsonl takes one JSON string (or array of ids) per stdin line
// and writes one JSON array (or string) per line.
#include <iostream>

#include "cli/commands.h"
#include "cli/common.h"
#include "io/json_fields.h"

namespace bringup::cli {

namespace {

struct TokenizeArgs {
  std::string model = default_model_dir();
  bool jsonl = false;
  std::string input;
  CLI::Option* input_opt = nullptr;
};

// All of stdin, read in blocks; more than the tokenizer takes in one call is refused as soon as
// it is seen, so memory stays bounded whatever arrives.
std::string all_stdin() {
  std::string text;
  std::vector<char> block(size_t{1} << 20);
  for (;;) {
    const size_t n = std::fread(block.data(), 1, block.size(), stdin);
    text.append(block.data(), n);
    if (text.size() > Tokenizer::kMaxEncodeBytes) {
      throw Error("stdin holds more than the tokenizer's " +
                  std::to_string(Tokenizer::kMaxEncodeBytes >> 20) +
                  " MiB limit per call (split it)");
    }
    if (n < block.size()) return text;
  }
}

int run_tokenize(const TokenizeArgs& a) {
  const Tokenizer tok = Tokenizer::load(a.model);
  if (!a.jsonl) {
    const std::string text = a.input_opt->count() ? a.input : all_stdin();
    std::printf("%s\n", join_ids(tok.encode(text)).c_str());
    return 0;
  }
  int64_t n = 0;
  for (std::string line; std::getline(std::cin, line);) {
    ++n;
    const Json j = parse_json(line, "stdin line " + std::to_string(n));
    if (!j.is_string()) throw Error("stdin line " + std::to_string(n) + ": expected a JSON string");
    std::printf("%s\n", Json(tok.encode(j.get<std::string>())).dump().c_str());
  }
  return 0;
}

std::vector<int32_t> json_ids(const Json& j, const std::string& where) {
  if (!j.is_array()) throw Error(where + ": expected a JSON array of token ids");
  std::vector<int32_t> ids;
  for (const Json& e : j) {
    if (!e.is_number_integer() || e.get<int64_t>() < INT32_MIN || e.get<int64_t>() > INT32_MAX) {
      throw Error(where + ": expected integer token ids");
    }
    ids.push_back(static_cast<int32_t>(e.get<int64_t>()));
  }
  return ids;
}

int run_detokenize(const TokenizeArgs& a) {
  const Tokenizer tok = Tokenizer::load(a.model);
  if (!a.jsonl) {
    const std::string text = a.input_opt->count() ? a.input : all_stdin();
    std::fputs(tok.decode(parse_ids(text, "ids")).c_str(), stdout);
    return 0;
  }
  int64_t n = 0;
  for (std::string line; std::getline(std::cin, line);) {
    const std::string where = "stdin line " + std::to_string(++n);
    const std::string text = tok.decode(json_ids(parse_json(line, where), where));
    std::printf("%s\n", Json(text).dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
  }
  return 0;
}

}  // namespace

std::function<int()> add_tokenize(CLI::App& app) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* sub = app.add_subcommand("tokenize", "Text to token ids");
  add_model_dir_arg(sub, args->model, false);
  sub->add_flag("--jsonl", args->jsonl,
                "one JSON string per stdin line -> one JSON array per line");
  args->input_opt = sub->add_option("text", args->input, "text (default: all of stdin)");
  return [args] { return run_tokenize(*args); };
}

std::function<int()> add_detokenize(CLI::App& app) {
  auto args = std::make_shared<TokenizeArgs>();
  CLI::App* sub = app.add_subcommand("detokenize", "Token ids to text");
  add_model_dir_arg(sub, args->model, false);
  sub->add_flag("--jsonl", args->jsonl,
                "one JSON array of ids per stdin line -> one JSON string per line");
  args->input_opt = sub->add_option("ids", args->input, "ids, e.g. \"9707 1879\" (default: stdin)");
  return [args] { return run_detokenize(*args); };
}

}  // namespace bringup::cli
