#include "cli/common.h"

#include "tokenizer/utf8.h"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace bringup::cli {

std::string default_model_dir() {
  if (const char* env = std::getenv("BRINGUP_MODEL"); env && *env) return env;
  return BRINGUP_DEFAULT_MODEL;
}

void add_model_dir_arg(CLI::App* app, std::string& model, bool required) {
  auto* m = app->add_option("--model", model, "Hugging Face checkpoint directory");
  if (required) {
    m->required();
  } else {
    m->capture_default_str();
  }
}

void add_model_args(CLI::App* app, ModelArgs& args, bool model_required) {
  add_model_dir_arg(app, args.model, model_required);
  app->add_option("--precision", args.precision, "fp32 | bf16 | bfp8-mixed | bfp8")
      ->capture_default_str();
  app->add_option("--max-seq-len", args.max_seq_len,
                  "KV cache length (default: the model's max_position_embeddings)");
  app->add_option("--threads", args.threads, "CPU threads (default: every core)");
}

LoadedModel load_model(const ModelArgs& args) {
  const Precision precision = parse_precision(args.precision);
  if (args.max_seq_len < 0) throw Error("--max-seq-len must be positive");
  if (args.threads < 0) throw Error("--threads must be positive");
  const auto t0 = std::chrono::steady_clock::now();
  LoadedModel m{Checkpoint::open(args.model), make_cpu_device(args.threads), nullptr, 0};
  m.model = build_model(m.checkpoint, *m.device, args.max_seq_len, precision);
  m.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return m;
}

std::vector<int32_t> parse_ids(const std::string& text, const std::string& what) {
  std::vector<int32_t> ids;
  std::string token;
  auto flush = [&] {
    if (token.empty()) return;
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(token.c_str(), &end, 10);
    if (*end != '\0' || errno != 0 || v < 0 || v > INT32_MAX) {
      throw Error(what + ": '" + token + "' is not a token id (a non-negative integer)");
    }
    ids.push_back(static_cast<int32_t>(v));
    token.clear();
  };
  for (char ch : text) {
    if (ch == ' ' || ch == ',' || ch == '\n' || ch == '\t' || ch == '\r' || ch == '[' ||
        ch == ']') {
      flush();
    } else {
      token += ch;
    }
  }
  flush();
  if (ids.empty()) throw Error(what + ": no token ids given");
  return ids;
}

std::string read_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(what + ": cannot open '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool utf8_error(const std::string& text) {
  return utf8::first_invalid(text) != std::string::npos;
}

std::string join_ids(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? " " : "") + std::to_string(ids[i]);
  return s;
}

}  // namespace bringup::cli
