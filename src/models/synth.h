// Random-weight checkpoints of a model family (its tensor list, models/family.h) in Hugging Face
// layout (config.json, generation_config.json, safetensors shards with an index), written tensor by
// tensor so that a 15 GB checkpoint never sits in memory. The weights follow the statistics of a
// trained Qwen2 that stress the numerics: q/k projections that make attention peaked, outlier
// channels in the q/k biases, non-unit norm weights, and logits with a standard deviation near 3.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "bringup/checkpoint.h"
#include "bringup/config.h"

namespace bringup {

struct SynthOptions {
  ModelConfig config;
  StorageDType dtype = StorageDType::kBF16;
  uint64_t seed = 0;
  size_t shard_bytes = size_t{2} << 30;  // 0: one model.safetensors without an index
  // Multiplies one decoder layer's weights by (1 + perturb_scale * noise), for divergence tests.
  int64_t perturb_layer = -1;
  double perturb_scale = 0.0;
};

// Names accepted by synth_preset, e.g. "arcee-spark".
std::vector<std::string> synth_preset_names();
ModelConfig synth_preset(const std::string& name);

// Bytes the checkpoint's tensors take.
size_t synth_weight_bytes(const SynthOptions& o);
// Writes the checkpoint into dir (created if absent). Throws Error naming the directory when the
// disk does not have room for it, before writing anything.
void write_synthetic_checkpoint(const SynthOptions& o, const std::filesystem::path& dir);

// config.json text for a config.
std::string model_config_json(const ModelConfig& c);

}  // namespace bringup
