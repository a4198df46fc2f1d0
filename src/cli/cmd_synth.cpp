// bringup synth: a random-weight checkpoint in Hugging Face layout, for shapes we have no weights
// of (Arcee-Spark's twin for benchmarks) and for divergence tests.
#include <cstdio>

#include "cli/commands.h"
#include "cli/common.h"
#include "models/memory_plan.h"
#include "models/synth.h"

namespace bringup::cli {

namespace {

struct SynthArgs {
  std::string config, preset, out, dtype = "bf16", shard_size = "2GiB";
  int64_t layers = 0, vocab = 0, perturb_layer = -1;
  double perturb_scale = 0.05;
  uint64_t seed = 0;
};

int run_synth(const SynthArgs& a) {
  if (a.config.empty() == a.preset.empty()) throw Error("give exactly one of --config or --preset");
  SynthOptions o;
  o.config = a.preset.empty() ? load_model_config(a.config) : synth_preset(a.preset);
  if (a.layers < 0 || a.vocab < 0) throw Error("--layers and --vocab must be positive");
  if (a.layers > 0) {
    o.config.num_hidden_layers = a.layers;
    o.config.max_window_layers = a.layers;
  }
  if (a.vocab > 0) o.config.vocab_size = a.vocab;
  if (a.dtype == "bf16") {
    o.dtype = StorageDType::kBF16;
  } else if (a.dtype == "f32") {
    o.dtype = StorageDType::kF32;
  } else {
    throw Error("--dtype must be bf16 or f32, not '" + a.dtype + "'");
  }
  o.seed = a.seed;
  o.shard_bytes = parse_bytes(a.shard_size, "--shard-size");
  if (a.perturb_layer >= o.config.num_hidden_layers) {
    throw Error("--perturb-layer " + std::to_string(a.perturb_layer) + " does not exist (" +
                std::to_string(o.config.num_hidden_layers) + " layers)");
  }
  o.perturb_layer = a.perturb_layer;
  o.perturb_scale = a.perturb_scale;
  std::fprintf(stderr, "writing %s of random weights to %s\n",
               format_bytes(synth_weight_bytes(o)).c_str(), a.out.c_str());
  write_synthetic_checkpoint(o, a.out);
  return 0;
}

}  // namespace

std::function<int()> add_synth(CLI::App& app) {
  auto args = std::make_shared<SynthArgs>();
  std::string presets;
  for (const auto& n : synth_preset_names()) presets += (presets.empty() ? "" : ", ") + n;
  CLI::App* sub = app.add_subcommand("synth", "Write a random-weight Qwen2 checkpoint");
  sub->add_option("--config", args->config, "a Hugging Face config.json to take the shape from");
  sub->add_option("--preset", args->preset, "a known shape: " + presets);
  sub->add_option("--layers", args->layers, "override num_hidden_layers");
  sub->add_option("--vocab", args->vocab, "override vocab_size");
  sub->add_option("--dtype", args->dtype, "bf16 | f32")->capture_default_str();
  sub->add_option("--seed", args->seed, "random seed")->capture_default_str();
  sub->add_option("--shard-size", args->shard_size, "largest shard (0: one model.safetensors)")
      ->capture_default_str();
  sub->add_option("--perturb-layer", args->perturb_layer,
                  "multiply this layer's weights by 1 + scale * noise (divergence tests)");
  sub->add_option("--perturb-scale", args->perturb_scale, "noise scale for --perturb-layer")
      ->capture_default_str();
  sub->add_option("--out", args->out, "output directory")->required();
  return [args] { return run_synth(*args); };
}

}  // namespace bringup::cli
