#include "cli/common.h"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/thread_pool.h"
#include "io/json_fields.h"
#include "models/memory_plan.h"
#include "tokenizer/utf8.h"

namespace bringup::cli {

std::string default_model_dir() {
  if (const char* env = std::getenv("BRINGUP_MODEL"); env && *env) return env;
  return BRINGUP_DEFAULT_MODEL;
}

void add_model_dir_arg(CLI::App* app, std::string& model, bool required) {
  auto* m = app->add_option("--model", model, "Hugging Face checkpoint directory or GGUF file");
  if (required) {
    m->required();
  } else {
    m->capture_default_str();
  }
}

void add_model_args(CLI::App* app, ModelArgs& args, bool model_required) {
  add_model_dir_arg(app, args.model, model_required);
  app->add_option("--precision", args.precision, kPrecisionHelp);
  app->add_option("--kv-precision", args.kv_precision, kKvPrecisionHelp);
  app->add_option("--max-seq-len", args.max_seq_len,
                  "KV cache length (default: the model's context: max_position_embeddings, times "
                  "the RoPE scaling factor when scaled)");
  app->add_option("--threads", args.threads, "CPU threads (default: every core)");
  app->add_option("--kv-budget", args.kv_budget,
                  "KV pool size in tokens, all sequences together (default: what fits beside the "
                  "weights, as `plan` shows)");
  app->add_option("--weight-cache", args.weight_cache, kWeightCacheHelp)->capture_default_str();
  app->add_flag("--weight-cache-mmap", args.weight_cache_mmap,
                "Use the cached weights where the mapped cache file holds them instead of copying "
                "them into the device's own memory: loads in a fraction of a second, but decode "
                "measured 10-40% slower here");
}

std::filesystem::path resolve_weight_cache(const std::string& arg, const std::string& model,
                                           size_t checkpoint_bytes) {
  if (arg == "off") return {};
  if (arg != "auto") {
    if (arg.empty()) throw Error("--weight-cache: expected a directory, 'auto' or 'off'");
    return arg;
  }
  if (checkpoint_bytes < (size_t{256} << 20)) return {};
  const std::filesystem::path m(model);
  return (std::filesystem::is_directory(m) ? m : m.parent_path()) / ".bringup-cache";
}

// One line on stderr when the cache was written, rebuilt or could not be used.
void print_weight_cache_notice(const WeightCacheReport& r) {
  using S = WeightCacheReport::State;
  const std::string file = r.file.string();
  const double mib = static_cast<double>(r.bytes) / (1 << 20);
  if (r.state == S::kWritten && r.reason.empty()) {
    std::fprintf(stderr, "[weight cache %s written, %.0f MiB]\n", file.c_str(), mib);
  } else if (r.state == S::kWritten) {
    std::fprintf(stderr, "[weight cache %s: %s; rebuilt, %.0f MiB]\n", file.c_str(),
                 r.reason.c_str(), mib);
  } else if (r.state == S::kNotWritten) {
    std::fprintf(stderr, "[weight cache not written: %s]\n", r.reason.c_str());
  }
}

Precision resolve_precision(const std::string& name, const std::string& model) {
  return name.empty() ? default_precision(model) : parse_precision(name);
}

std::string gguf_formats_note(Precision p) {
  if (p == Precision::kNative) {
    return "under native, Q8_0, Q4_K and Q6_K matrices run on kernels of their own, F32 ones as "
           "fp32, BF16 ones as bf16, and the other types are decoded to bf16 at load";
  }
  return "decoded at load into the " + std::string(precision_name(p)) + " policy's formats";
}

void check_model_dir(const std::string& dir) {
  if (!std::filesystem::is_directory(dir) && !is_gguf_file(dir)) {
    throw Error("--model '" + dir + "': no such directory or GGUF file");
  }
}

LoadedModel load_model(const ModelArgs& args, int64_t min_sequences, int64_t max_logit_rows) {
  ModelOptions o;
  o.precision = resolve_precision(args.precision, args.model);
  if (!args.kv_precision.empty()) o.kv_precision = parse_kv_precision(args.kv_precision);
  if (args.max_seq_len < 0) throw Error("--max-seq-len must be positive");
  if (args.threads < 0) throw Error("--threads must be positive");
  if (args.kv_budget < 0) throw Error("--kv-budget must be positive");
  o.max_seq_len = args.max_seq_len;
  o.kv_budget_tokens = args.kv_budget;
  o.max_sequences = static_cast<int>(std::clamp<int64_t>(min_sequences, 1, INT32_MAX));
  o.max_logit_rows = max_logit_rows;
  check_model_dir(args.model);
  const auto t0 = std::chrono::steady_clock::now();
  LoadedModel m{Checkpoint::open(args.model), make_cpu_device(args.threads), nullptr, 0};
  o.weight_cache = resolve_weight_cache(args.weight_cache, args.model, m.checkpoint.weight_bytes());
  o.map_weight_cache = args.weight_cache_mmap;
  m.model = build_model(m.checkpoint, *m.device, o);
  print_weight_cache_notice(m.model->weight_cache());
  if (is_gguf_file(args.model)) {
    std::fprintf(stderr, "[GGUF tensors %s; %s]\n", m.checkpoint.storage_summary().c_str(),
                 gguf_formats_note(o.precision).c_str());
  }
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

void add_prompt_args(CLI::App* app, PromptArgs& a) {
  app->add_option("--prompt", a.prompt, "prompt text");
  app->add_option("--prompt-file", a.prompt_file, "prompt text from this file (UTF-8)");
  app->add_option("--prompt-ids-file", a.prompt_ids_file,
                  "prompt ids from a JSON list in this file");
  app->add_option("--prompt-ids", a.prompt_ids, "prompt ids, e.g. \"1 2 3\"");
}

std::vector<int32_t> resolve_prompt(const PromptArgs& a, const std::string& model_dir) {
  const int given = !a.prompt.empty() + !a.prompt_file.empty() + !a.prompt_ids_file.empty() +
                    !a.prompt_ids.empty();
  if (given > 1) {
    throw Error("give only one of --prompt, --prompt-file, --prompt-ids-file or --prompt-ids");
  }
  if (!a.prompt_ids.empty()) return parse_ids(a.prompt_ids, "--prompt-ids");
  if (!a.prompt_ids_file.empty()) {
    const Json j = parse_json(read_file(a.prompt_ids_file, "--prompt-ids-file"), a.prompt_ids_file);
    if (!j.is_array() || j.empty())
      throw Error(a.prompt_ids_file + ": expected a JSON list of token ids");
    std::vector<int32_t> ids;
    for (const Json& e : j) {
      if (!e.is_number_integer() || e.get<int64_t>() < 0 || e.get<int64_t>() > INT32_MAX) {
        throw Error(a.prompt_ids_file + ": expected non-negative integer token ids");
      }
      ids.push_back(static_cast<int32_t>(e.get<int64_t>()));
    }
    return ids;
  }
  std::string text = a.prompt;
  if (!a.prompt_file.empty()) {
    text = read_file(a.prompt_file, "--prompt-file");
    if (utf8_error(text)) throw Error("--prompt-file '" + a.prompt_file + "' is not valid UTF-8");
  }
  if (text.empty()) return {};
  // A prompt is a text of its own: with the tokens the tokenizer adds around one (a BOS id).
  std::vector<int32_t> ids = Tokenizer::load(model_dir).encode(text, true);
  if (ids.empty()) throw Error("the prompt is empty");
  return ids;
}

void check_fp32_fits(const ModelConfig& c, int64_t max_seq_len) {
  ModelOptions o;
  o.precision = Precision::kFp32;
  o.max_seq_len = max_seq_len;
  o.kv_budget_tokens = max_seq_len;
  const std::shared_ptr<Device> dev = make_cpu_device();
  const MemoryPlan plan = plan_memory(c, o, *dev, dev->available_memory());
  if (plan.available > 0 && plan.total() > plan.available) {
    throw Error("the fp32 reference path needs " + format_bytes(plan.total()) + " but " +
                format_bytes(plan.available) +
                " are available; score against a reference file instead (--reference, made on a "
                "larger machine by bringup reference or scripts/hf_reference.py)");
  }
}

std::string join_ids(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? " " : "") + std::to_string(ids[i]);
  return s;
}

Limits better(const Limits& a, const Limits& b) {
  Limits l = a;
  l.bandwidth = cpu::better(a.bandwidth, b.bandwidth);
  l.compute = cpu::better(a.compute, b.compute);
  return l;
}

// The probes run in a child process, so their buffer never counts in this process's peak memory.
Limits probe_limits(int threads, size_t bytes) {
  int fds[2];
  if (pipe(fds) != 0) throw Error("bench: cannot create a pipe for the probes");
  const pid_t pid = fork();
  if (pid < 0) throw Error("bench: cannot fork the probe process");
  if (pid == 0) {
    close(fds[0]);
    Limits l;
    {
      ThreadPool pool(threads > 0 ? threads
                                  : static_cast<int>(std::thread::hardware_concurrency()));
      l.bandwidth = cpu::probe_memory_read(pool, bytes, 5);
      l.compute = cpu::probe_bf16_compute(pool, 5, &l.bf16);
    }
    const ssize_t w = write(fds[1], &l, sizeof l);
    _exit(w == static_cast<ssize_t>(sizeof l) ? 0 : 1);
  }
  close(fds[1]);
  Limits l;
  const ssize_t r = read(fds[0], &l, sizeof l);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (r != static_cast<ssize_t>(sizeof l) || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw Error("bench: the machine probes failed");
  }
  return l;
}

}  // namespace bringup::cli
