// What the bringup subcommands share: the model options and loading, id lists, output helpers.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bringup/bringup.h"
#include "kernels/cpu/probes.h"

namespace bringup::cli {

// The model `generate`, `chat` and `make run` use when --model is not given: $BRINGUP_MODEL, else
// the model shipped in the repo.
std::string default_model_dir();

struct ModelArgs {
  std::string model = default_model_dir();
  std::string precision;              // empty: default_precision(model)
  std::string kv_precision;           // empty: the policy's
  int64_t max_seq_len = 0;            // 0: the model's context (max_position_embeddings, or scaled)
  int threads = 0;                    // 0: every core
  int64_t kv_budget = 0;              // KV pool tokens, all sequences together; 0: what fits
  std::string weight_cache = "auto";  // a directory, "off", or auto (see kWeightCacheHelp)
  bool weight_cache_mmap = false;     // ModelOptions::map_weight_cache
};

void add_model_args(CLI::App* app, ModelArgs& args, bool model_required = true);
// Just --model, for commands that need only the tokenizer.
void add_model_dir_arg(CLI::App* app, std::string& model, bool required);

inline constexpr const char* kWeightCacheHelp =
    "Directory of the packed-weight cache (the converted weights, written by the first load and "
    "read by later ones), or 'off'. Default 'auto': .bringup-cache beside the checkpoint, for "
    "checkpoints of 256 MiB and more (smaller ones convert in about a second)";
// The cache directory --weight-cache names for the checkpoint at `model` (empty: none).
std::filesystem::path resolve_weight_cache(const std::string& arg, const std::string& model,
                                           size_t checkpoint_bytes);

struct LoadedModel {
  Checkpoint checkpoint;
  std::shared_ptr<Device> device;
  std::unique_ptr<Model> model;
  double load_seconds = 0;
};

// min_sequences: sequences of --max-seq-len the KV pool must hold at once (a batch).
// max_logit_rows: ModelOptions::max_logit_rows (0: every row of a step).
LoadedModel load_model(const ModelArgs& args, int64_t min_sequences = 1,
                       int64_t max_logit_rows = 0);
// A --model that is not a directory is named as such (before anything looks inside it).
// --precision's help, and its value: the named policy, or the model's default when none is named
// (native for a GGUF file, else bfp8-mixed).
inline constexpr const char* kPrecisionHelp =
    "fp32 | bf16 | bfp8-mixed | bfp8 | native (default: native for a GGUF file, which runs each "
    "matrix in its own format, else bfp8-mixed)";
Precision resolve_precision(const std::string& name, const std::string& model);
inline constexpr const char* kKvPrecisionHelp =
    "how the KV cache stores K and V: fp32 | bf16 | bfp8 (bfloat8_b blocks of 16 along head_dim, "
    "about half of bf16's bytes; default: fp32 under the fp32 policy, else bf16)";
// What a policy does with a GGUF file's tensor types, for the plan and the run summary.
std::string gguf_formats_note(Precision p);
void check_model_dir(const std::string& dir);

// A prompt given as text, a text file, a JSON file of ids, or ids on the command line.
struct PromptArgs {
  std::string prompt, prompt_file, prompt_ids_file, prompt_ids;
};
void add_prompt_args(CLI::App* app, PromptArgs& args);
// The prompt's token ids (text goes through the checkpoint's tokenizer); empty when none is given.
// More than one source is an error.
std::vector<int32_t> resolve_prompt(const PromptArgs& args, const std::string& model_dir);

// The fp32 reference path of a model must fit in this machine's available memory; the error
// suggests a reference file instead.
void check_fp32_fits(const ModelConfig& c, int64_t max_seq_len);

// "1 2 3", "1,2,3" or a JSON list "[1, 2, 3]"; `what` names the argument in errors.
std::vector<int32_t> parse_ids(const std::string& text, const std::string& what);
// A file's bytes; the error names the file.
std::string read_file(const std::string& path, const std::string& what);
bool utf8_error(const std::string& text);
std::string join_ids(const std::vector<int32_t>& ids);

// This machine's limits, measured in a child process (its buffer never counts in this process's
// peak memory): read bandwidth over `bytes` and bf16 compute, on `threads` threads (0: all).
struct Limits {
  cpu::ProbeResult bandwidth, compute;
  bool bf16 = true;
};
Limits probe_limits(int threads, size_t bytes);
// Each limit the better of two probes.
Limits better(const Limits& a, const Limits& b);

}  // namespace bringup::cli
