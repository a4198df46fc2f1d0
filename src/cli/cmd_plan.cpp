// bringup plan: the memory a model needs under a precision policy, and whether it fits a device.
#include <algorithm>
#include <climits>
#include <cstdio>
#include <optional>

#include "cli/commands.h"
#include "cli/common.h"
#include "models/activations.h"
#include "models/family.h"
#include "models/memory_plan.h"
#include "runtime/kv_cache.h"

namespace bringup::cli {

namespace {

struct PlanArgs {
  std::string model;
  std::string precision;     // empty: the model's default
  std::string kv_precision;  // empty: the policy's
  int64_t max_seq_len = 0, batch = 1, kv_budget = 0;
  int threads = 0;
  std::string device_memory = "12GiB";
};

int run_plan(const PlanArgs& a) {
  const ModelConfig c = load_checkpoint_config(a.model);
  const Precision precision = resolve_precision(a.precision, a.model);
  // The checkpoint's tensors are opened (mapped, not read) only where the plan needs them: a
  // GGUF file's types, or the native policy's formats.
  std::optional<Checkpoint> ck;
  if (is_gguf_file(a.model) || precision == Precision::kNative) ck = Checkpoint::open(a.model);
  if (is_gguf_file(a.model)) {
    std::printf("GGUF tensors %s; %s\n", ck->storage_summary().c_str(),
                gguf_formats_note(precision).c_str());
  }
  if (a.batch < 1) throw Error("--batch must be at least 1");
  if (a.batch > INT32_MAX) throw Error("--batch is too large");
  if (a.kv_budget < 0) throw Error("--kv-budget must be positive");
  if (a.threads < 0) throw Error("--threads must be positive");
  ModelOptions o;
  o.precision = precision;
  if (!a.kv_precision.empty()) o.kv_precision = parse_kv_precision(a.kv_precision);
  o.max_seq_len = checked_max_seq_len(c, a.max_seq_len);
  o.max_sequences = static_cast<int>(a.batch);
  o.kv_budget_tokens = a.kv_budget;
  const size_t device = parse_bytes(a.device_memory, "--device-memory");
  const std::shared_ptr<Device> dev = make_cpu_device(a.threads);
  const MemoryPlan plan = ck ? plan_memory(*ck, o, *dev, device)
                             : plan_memory(c, o, *dev, device, tokenizer_memory(a.model));
  std::printf(
      "memory plan: %s (%lld layers, hidden %lld, %.2f B parameters), %s, max_seq_len %lld, batch "
      "%lld\n",
      a.model.c_str(), static_cast<long long>(c.num_hidden_layers),
      static_cast<long long>(c.hidden_size), static_cast<double>(plan.parameters) / 1e9,
      std::string(precision_name(precision)).c_str(), static_cast<long long>(plan.max_seq_len),
      static_cast<long long>(a.batch));
  std::printf("  %-44s %-10s %12s\n", "weights", "format", "bytes");
  for (const auto& w : plan.weights) {
    std::printf("    %-42s %-10s %12s\n", w.name.c_str(), w.format.c_str(),
                format_bytes(w.bytes).c_str());
  }
  auto line = [](const std::string& what, const char* format, size_t bytes) {
    std::printf("  %-44s %-10s %12s\n", what.c_str(), format, format_bytes(bytes).c_str());
  };
  line("weights total", "", plan.weight_bytes);
  const std::string pool = "kv pool (" + std::to_string(plan.kv_budget_tokens) + " tokens, " +
                           (plan.kv_budget_fitted ? "what fits" : "as asked") + ")";
  line(pool, std::string(kv_precision_name(o.kv_precision, o.precision)).c_str(),
       plan.kv_cache_bytes);
  line("activations (" + std::to_string(max_step_rows(o)) + " rows a step)", "fp32",
       plan.activation_bytes);
  line("kernel workspace (" + std::to_string(device_threads(*dev)) + " threads)", "",
       plan.workspace_bytes);
  line("logits read back (one step's rows)", "fp32", plan.host_logits_bytes);
  if (plan.tokenizer_bytes) line("tokenizer (parsed)", "", plan.tokenizer_bytes);
  line("runtime (code, libraries)", "", plan.runtime_bytes);
  line("total", "", plan.total());
  const double used = 100.0 * static_cast<double>(plan.total()) / static_cast<double>(device);
  if (plan.total() <= device) {
    std::printf("fits in %s: yes (%.0f%% used, %s free)\n", format_bytes(device).c_str(), used,
                format_bytes(device - plan.total()).c_str());
  } else {
    std::printf("fits in %s: no (%.0f%%; %s more needed)\n", format_bytes(device).c_str(), used,
                format_bytes(plan.total() - device).c_str());
  }
  // The default --kv-budget: the pool that fills the memory beside everything else.
  const int64_t room = static_cast<int64_t>(
      std::min<size_t>(plan.kv_room() / plan.kv_bytes_per_token, kMaxKvBudgetTokens));
  std::printf("kv budget that fits beside the weights: %lld tokens (%.1f sequences of %lld)\n",
              static_cast<long long>(room),
              static_cast<double>(room) / static_cast<double>(plan.max_seq_len),
              static_cast<long long>(plan.max_seq_len));
  // What bounds a sequence: the context (scaled RoPE stretches it) and the attention window.
  const RopeScaling& rs = c.rope_scaling;
  std::string context = std::to_string(c.context_length()) + " positions";
  if (rs.type != "default") {
    char scaled[96];
    std::snprintf(scaled, sizeof scaled, " (%s RoPE scaling, factor %g over %lld)", rs.type.c_str(),
                  rs.factor, static_cast<long long>(rs.original_context));
    context += scaled;
  }
  const int64_t window = family_of(c, a.model).attention_window(c);
  std::printf("context: %s; attention window: %s\n", context.c_str(),
              window > 0 ? (std::to_string(window) + " positions").c_str() : "all positions");
  return 0;
}

}  // namespace

std::function<int()> add_plan(CLI::App& app) {
  auto args = std::make_shared<PlanArgs>();
  CLI::App* sub = app.add_subcommand("plan", "Memory plan of a model under a precision policy");
  add_model_dir_arg(sub, args->model, true);
  sub->add_option("--precision", args->precision, kPrecisionHelp);
  sub->add_option("--kv-precision", args->kv_precision, kKvPrecisionHelp);
  sub->add_option("--max-seq-len", args->max_seq_len,
                  "KV cache length (default: the model's context)");
  sub->add_option("--batch", args->batch, "sequences held at once")->capture_default_str();
  sub->add_option(
      "--kv-budget", args->kv_budget,
      "KV pool tokens, all sequences together (default: what fits beside the weights in "
      "--device-memory, at least --batch x --max-seq-len)");
  sub->add_option("--threads", args->threads, "CPU threads (scratch buffers are per thread)");
  sub->add_option("--device-memory", args->device_memory,
                  "memory to fit in (the n150 card has 12 GiB)")
      ->capture_default_str();
  return [args] { return run_plan(*args); };
}

}  // namespace bringup::cli
