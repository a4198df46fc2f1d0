#include "eval/compare.h"

#include "eval/reference.h"
#include "eval/self_reference.h"
#include "io/npy.h"

namespace bringup {

LayerBaseline baseline_from_reference(const std::string& file, const ModelConfig& c) {
  const Reference ref = load_reference(file);
  check_reference_vocab(ref, c.vocab_size, file);
  const ReferenceCase* with = nullptr;
  for (const ReferenceCase& rc : ref.cases) {
    if (rc.hidden_states_npy && !with) with = &rc;
  }
  if (!with) throw Error(file + ": no case has hidden_states_npy to compare with");
  LayerBaseline b;
  b.prompt = with->prompt_ids;
  const NpyArray arr = read_npy(ref.dir / *with->hidden_states_npy);
  const std::vector<int64_t> want = {c.num_hidden_layers + 1, static_cast<int64_t>(b.prompt.size()),
                                     c.hidden_size};
  if (arr.shape != want) {
    throw Error((ref.dir / *with->hidden_states_npy).string() +
                ": expected hidden states of shape [" + std::to_string(want[0]) + ", " +
                std::to_string(want[1]) + ", " + std::to_string(want[2]) + "]");
  }
  b.hf = arr.data;
  b.name = file + " (case " + with->name + ")";
  return b;
}

LayerBaseline baseline_from_fp32(const Checkpoint& ck, Device& device,
                                 std::vector<int32_t> prompt) {
  if (prompt.empty()) prompt = seed_default_prompt();
  LayerBaseline b;
  auto fp32 = build_model(ck, device, static_cast<int64_t>(prompt.size()), Precision::kFp32);
  b.fp32 = capture_hidden_states(*fp32, prompt);
  b.prompt = std::move(prompt);
  b.name = "the fp32 path";
  return b;
}

LayerComparison compare_layers(Model& model, const LayerBaseline& base) {
  const int64_t layers = model.config().num_hidden_layers;
  const HiddenStates got = capture_hidden_states(model, base.prompt);
  LayerComparison out;
  out.positions = got.positions;
  out.baseline = base.name;
  const size_t plane = static_cast<size_t>(got.positions * got.hidden);
  if (!base.fp32 && base.hf.size() != plane * static_cast<size_t>(layers + 1)) {
    throw Error(base.name + ": hidden states do not match the model's shape");
  }
  auto add = [&](const std::string& name, std::span<const float> mine, std::span<const float> ref) {
    out.rows.push_back({name, pearson(mine, ref), max_abs_diff(mine, ref)});
  };
  auto hf_plane = [&](int64_t i) {
    return std::span<const float>(base.hf.data() + i * plane, plane);
  };
  const std::optional<HiddenStates>& f = base.fp32;
  add("model.embed_tokens", got.embedding, f ? std::span<const float>(f->embedding) : hf_plane(0));
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l);
    if (f) {
      add(p + " attention", got.after_attention[l], f->after_attention[l]);
      add(p + " mlp", got.after_mlp[l], f->after_mlp[l]);
    } else if (l + 1 < layers) {
      add(p + " mlp", got.after_mlp[l], hf_plane(l + 1));
    }
  }
  add("model.norm", got.final_norm, f ? std::span<const float>(f->final_norm) : hf_plane(layers));
  return out;
}

const LayerRow* LayerComparison::first_below(double pcc) const {
  for (const LayerRow& r : rows) {
    if (r.pcc < pcc) return &r;
  }
  return nullptr;
}

Json LayerComparison::to_json(const std::string& model, const std::string& precision,
                              double pcc) const {
  Json j = {{"model", model},         {"precision", precision}, {"baseline", baseline},
            {"positions", positions}, {"pcc_threshold", pcc},   {"rows", Json::array()}};
  for (const LayerRow& r : rows)
    j["rows"].push_back({{"block", r.block}, {"pcc", r.pcc}, {"max_abs_err", r.max_abs_err}});
  const LayerRow* first = first_below(pcc);
  j["first_divergence"] = first ? Json(first->block) : Json(nullptr);
  return j;
}

}  // namespace bringup
