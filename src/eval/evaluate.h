// A whole evaluation, as `bringup eval` and the Python module run it: a reference (a
// bringup-reference/1 file, the project's fp32 path on a prompt, or cases a caller built, e.g.
// from Hugging Face in the same process), every case teacher-forced through a model, and the
// scores in the shape of the seed's YT_METRICS.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bringup/checkpoint.h"
#include "bringup/model.h"
#include "eval/kl_divergence.h"
#include "eval/reference.h"
#include "eval/teacher_forcing.h"
#include "io/json_fields.h"

namespace bringup {

// A reference and, per case, its full logits ([N, vocab]) where known (empty otherwise).
struct Scoring {
  Reference ref;
  std::vector<std::vector<float>> logits;
  std::string source;  // "the fp32 path", or the file
};

// Reads the file and the .npy logits its cases name; every id and shape is checked against vocab.
Scoring scoring_from_file(const std::string& file, int64_t vocab);
// The fp32 path's greedy continuation of prompt (the seed's default prompt when empty), n tokens.
Scoring scoring_from_fp32(const Checkpoint& ck, Device& device, std::vector<int32_t> prompt,
                          int64_t max_new_tokens, int64_t max_seq_len);

struct EvalReport {
  std::vector<CaseScore> cases;
  EvalTotals total;
  KlDivergence kl;  // over the steps whose full reference logits are known
  std::string source;
  Json metrics;  // what YT_METRICS= prints
};

EvalReport evaluate(Model& model, const Scoring& scoring, const EvalOptions& options,
                    const std::string& model_name);

}  // namespace bringup
