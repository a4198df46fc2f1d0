// Where a precision policy's residual stream departs from a baseline — the project's fp32 path,
// or the hidden states Hugging Face saved with a reference file: for every decoder layer, after
// attention and after the MLP, Pearson correlation and largest error. `bringup compare` prints
// it; the Python module returns it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "bringup/checkpoint.h"
#include "bringup/model.h"
#include "eval/hidden_states.h"
#include "io/json_fields.h"

namespace bringup {

struct LayerBaseline {
  std::vector<int32_t> prompt;
  std::optional<HiddenStates> fp32;  // the fp32 path's, per block
  std::vector<float> hf;             // or Hugging Face's [L + 1, T, H]
  std::string name;                  // "the fp32 path", or "FILE (case NAME)"
};

// The first case of the file with hidden_states_npy; its shape is checked against the config.
LayerBaseline baseline_from_reference(const std::string& file, const ModelConfig& c);
// The fp32 path's hidden states of prompt (the seed's default prompt when empty).
LayerBaseline baseline_from_fp32(const Checkpoint& ck, Device& device, std::vector<int32_t> prompt);

struct LayerRow {
  std::string block;  // as in the checkpoint's tensor names: "model.layers.3 mlp"
  double pcc = 0, max_abs_err = 0;
};

struct LayerComparison {
  std::vector<LayerRow> rows;
  int64_t positions = 0;
  std::string baseline;
  const LayerRow* first_below(double pcc) const;  // nullptr when every row reaches pcc
  Json to_json(const std::string& model, const std::string& precision, double pcc) const;
};

// Runs the baseline's prompt through model and compares block by block.
LayerComparison compare_layers(Model& model, const LayerBaseline& base);

}  // namespace bringup
