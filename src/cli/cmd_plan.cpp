// bringup plan: the memory a model needs under a precision policy, and whether it fits a device.
#include <cstdio>
#include <thread>

#include "cli/commands.h"
#include "cli/common.h"
#include "models/memory_plan.h"
#include "runtime/kv_cache.h"

namespace bringup::cli {

namespace {

struct PlanArgs {
  std::string model;
  std::string precision = "bfp8-mixed";
  int64_t max_seq_len = 0, batch = 1, kv_budget = 0;
  int threads = 0;
  std::string device_memory = "12GiB";
};

int run_plan(const PlanArgs& a) {
  const ModelConfig c = load_model_config(std::filesystem::path(a.model) / "config.json");
  const Precision p = parse_precision(a.precision);
  const int64_t len = checked_max_seq_len(c, a.max_seq_len);
  if (a.batch < 1) throw Error("--batch must be at least 1");
  const size_t device = parse_bytes(a.device_memory, "--device-memory");
  const int threads =
      a.threads > 0 ? a.threads : static_cast<int>(std::thread::hardware_concurrency());
  if (a.kv_budget < 0) throw Error("--kv-budget must be positive");
  const int64_t kv_tokens = a.kv_budget > 0 ? a.kv_budget : len * a.batch;
  const MemoryPlan plan = plan_memory(c, p, len, kv_tokens, threads);
  std::printf(
      "memory plan: %s (%lld layers, hidden %lld, %.2f B parameters), %s, max_seq_len %lld, batch "
      "%lld\n",
      a.model.c_str(), static_cast<long long>(c.num_hidden_layers),
      static_cast<long long>(c.hidden_size), static_cast<double>(plan.parameters) / 1e9,
      a.precision.c_str(), static_cast<long long>(len), static_cast<long long>(a.batch));
  std::printf("  %-44s %-10s %12s\n", "weights", "format", "bytes");
  for (const auto& w : plan.weights) {
    std::printf("    %-42s %-10s %12s\n", w.name.c_str(), w.format.c_str(),
                format_bytes(w.bytes).c_str());
  }
  std::printf("  %-44s %-10s %12s\n", "weights total", "", format_bytes(plan.weight_bytes).c_str());
  std::printf("  %-44s %-10s %12s\n",
              ("kv pool (budget " + std::to_string(kv_tokens) + " tokens, all sequences)").c_str(),
              p == Precision::kFp32 ? "fp32" : "bf16", format_bytes(plan.kv_cache_bytes).c_str());
  std::printf("  %-44s %-10s %12s\n", "working buffers (prefill chunk, scratch)", "fp32",
              format_bytes(plan.working_bytes).c_str());
  std::printf("  %-44s %-10s %12s\n", "runtime (code, libraries)", "",
              format_bytes(plan.runtime_bytes).c_str());
  std::printf("  %-44s %-10s %12s\n", "total", "", format_bytes(plan.total()).c_str());
  const double used = 100.0 * static_cast<double>(plan.total()) / static_cast<double>(device);
  if (plan.total() <= device) {
    std::printf("fits in %s: yes (%.0f%% used, %s free)\n", format_bytes(device).c_str(), used,
                format_bytes(device - plan.total()).c_str());
    // What a --kv-budget may be: the pool that fills the device beside everything else.
    const size_t per_token = plan.kv_cache_bytes / static_cast<size_t>((kv_tokens + 31) / 32 * 32);
    const size_t room = device - (plan.total() - plan.kv_cache_bytes);
    std::printf("kv budget that fits beside the weights: %lld tokens (%.1f sequences of %lld)\n",
                static_cast<long long>(room / per_token),
                static_cast<double>(room / per_token) / static_cast<double>(len),
                static_cast<long long>(len));
  } else {
    std::printf("fits in %s: no (%.0f%%; %s more needed)\n", format_bytes(device).c_str(), used,
                format_bytes(plan.total() - device).c_str());
  }
  return 0;
}

}  // namespace

std::function<int()> add_plan(CLI::App& app) {
  auto args = std::make_shared<PlanArgs>();
  CLI::App* sub = app.add_subcommand("plan", "Memory plan of a model under a precision policy");
  add_model_dir_arg(sub, args->model, true);
  sub->add_option("--precision", args->precision, "fp32 | bf16 | bfp8-mixed | bfp8")
      ->capture_default_str();
  sub->add_option("--max-seq-len", args->max_seq_len,
                  "KV cache length (default: max_position_embeddings)");
  sub->add_option("--batch", args->batch, "sequences held at once")->capture_default_str();
  sub->add_option("--kv-budget", args->kv_budget,
                  "KV pool tokens, all sequences together (default: --batch x --max-seq-len)");
  sub->add_option("--threads", args->threads, "CPU threads (scratch buffers are per thread)");
  sub->add_option("--device-memory", args->device_memory,
                  "memory to fit in (the n150 card has 12 GiB)")
      ->capture_default_str();
  return [args] { return run_plan(*args); };
}

}  // namespace bringup::cli
