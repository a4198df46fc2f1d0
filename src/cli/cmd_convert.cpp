// bringup convert: a Hugging Face checkpoint directory written as a GGUF file for llama.cpp and
// the tools built on it (io/gguf_export.h).
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "cli/common.h"
#include "io/gguf_export.h"

namespace bringup::cli {

namespace {

struct ConvertArgs {
  std::string model, to = "gguf", type = "f16", out;
};

int run_convert(const ConvertArgs& a) {
  if (a.to != "gguf") throw Error("--to must be gguf, not '" + a.to + "'");
  StorageDType type;
  if (a.type == "f16") {
    type = StorageDType::kF16;
  } else if (a.type == "bf16") {
    type = StorageDType::kBF16;
  } else if (a.type == "q8_0") {
    type = StorageDType::kQ8_0;
  } else if (a.type == "q4_k") {
    type = StorageDType::kQ4_K;
  } else if (a.type == "q6_k") {
    type = StorageDType::kQ6_K;
  } else if (a.type == "f32") {
    type = StorageDType::kF32;
  } else {
    throw Error("--type must be f16, bf16, q8_0, q4_k, q6_k or f32, not '" + a.type + "'");
  }
  check_model_dir(a.model);
  export_gguf(a.model, type, a.out);
  std::fprintf(stderr, "wrote %s (%s)\n", a.out.c_str(), a.type.c_str());
  if (!std::filesystem::exists(std::filesystem::path(a.model) / "tokenizer.json")) {
    std::fprintf(stderr,
                 "note: %s has no tokenizer.json, so the GGUF file has no vocabulary (llama.cpp "
                 "loads none without one)\n",
                 a.model.c_str());
  }
  return 0;
}

}  // namespace

std::function<int()> add_convert(CLI::App& app) {
  auto args = std::make_shared<ConvertArgs>();
  CLI::App* sub = app.add_subcommand("convert", "Write a checkpoint as a GGUF file (llama.cpp)");
  add_model_dir_arg(sub, args->model, true);
  sub->add_option("--to", args->to, "output format")->capture_default_str();
  sub->add_option("--type", args->type,
                  "matrix type: f16, bf16, q8_0, q4_k, q6_k or f32 (K types fall back to Q5_0 / "
                  "Q8_0 where rows are not whole 256-value blocks, as llama-quantize does)")
      ->capture_default_str();
  sub->add_option("--out", args->out, "GGUF file to write")->required();
  return [args] { return run_convert(*args); };
}

}  // namespace bringup::cli
