#include "eval/reference.h"

#include <fstream>

#include "bringup/error.h"
#include "core/mapped_file.h"
#include "io/json_fields.h"

namespace bringup {

namespace {

std::vector<int32_t> id_list(const JsonFields& f, const char* key, int64_t max_len) {
  const Json& v = f.value(key);
  if (!v.is_array() || v.empty()) f.fail(key, "must be a non-empty array of token ids");
  if (static_cast<int64_t>(v.size()) > max_len) {
    f.fail(key, "holds " + std::to_string(v.size()) + " ids; at most " + std::to_string(max_len) +
                    " are accepted");
  }
  std::vector<int32_t> out;
  out.reserve(v.size());
  for (const Json& e : v) {
    if (!e.is_number_integer() || e.get<int64_t>() < 0 || e.get<int64_t>() > INT32_MAX) {
      f.fail(key, "must hold non-negative integer token ids");
    }
    out.push_back(static_cast<int32_t>(e.get<int64_t>()));
  }
  return out;
}

template <typename T>
std::vector<std::array<T, 5>> rows5(const JsonFields& f, const char* key, size_t n) {
  const Json& v = f.value(key);
  if (!v.is_array() || v.size() != n) {
    f.fail(key, "must have one row per reference id (" + std::to_string(n) + ")");
  }
  std::vector<std::array<T, 5>> out(n);
  for (size_t i = 0; i < n; ++i) {
    const Json& row = v[i];
    if (!row.is_array() || row.size() != 5) f.fail(key, "rows must hold exactly 5 values");
    for (int j = 0; j < 5; ++j) {
      if (!row[j].is_number()) f.fail(key, "must hold numbers");
      if constexpr (std::is_integral_v<T>) {
        if (!row[j].is_number_integer() || row[j].get<int64_t>() < 0 ||
            row[j].get<int64_t>() > INT32_MAX) {
          f.fail(key, "must hold non-negative integer token ids");
        }
      }
      out[i][j] = row[j].get<T>();
    }
  }
  return out;
}

}  // namespace

Reference parse_reference(const std::string& text, const std::string& source) {
  const Json j = parse_json(text, source);
  const JsonFields f(j, source);
  const std::string format = f.string("format");
  if (format != "bringup-reference/1") {
    f.fail("format", "is '" + format + "'; expected 'bringup-reference/1'");
  }
  Reference r;
  r.model = f.optional_string("model").value_or("");
  r.weights_sha256 = f.optional_string("weights_sha256").value_or("");
  r.generator = f.optional_string("generator").value_or("");
  if (!f.is_null("hf_bf16_anchor")) {
    const JsonFields a(f.value("hf_bf16_anchor"), source + ": hf_bf16_anchor");
    r.hf_bf16_top1 = a.optional_number("top1");
    r.hf_bf16_top5 = a.optional_number("top5");
  }
  const Json& cases = f.value("cases");
  if (!cases.is_array() || cases.empty()) f.fail("cases", "must be a non-empty array");
  int64_t steps = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string where = source + ": cases[" + std::to_string(i) + "]";
    const JsonFields c(cases[i], where);
    ReferenceCase rc;
    rc.name = c.optional_string("name").value_or("case" + std::to_string(i));
    rc.prompt_ids = id_list(c, "prompt_ids", kMaxReferencePrompt);
    rc.reference_ids = id_list(c, "reference_ids", kMaxReferenceSteps);
    steps += static_cast<int64_t>(rc.reference_ids.size());
    if (steps > kMaxReferenceSteps) {
      throw Error(where + ": the reference holds more than " + std::to_string(kMaxReferenceSteps) +
                  " steps in all");
    }
    rc.top5_ids = rows5<int32_t>(c, "top5_ids", rc.reference_ids.size());
    rc.top5_logits = rows5<float>(c, "top5_logits", rc.reference_ids.size());
    rc.logits_npy = c.optional_string("logits_npy");
    rc.hidden_states_npy = c.optional_string("hidden_states_npy");
    for (const auto* npy : {&rc.logits_npy, &rc.hidden_states_npy}) {
      if (*npy && ((*npy)->empty() || (*npy)->find('/') != std::string::npos)) {
        throw Error(where + ": .npy names must be plain file names beside the reference");
      }
    }
    r.cases.push_back(std::move(rc));
  }
  return r;
}

Reference load_reference(const std::filesystem::path& file) {
  Reference r = parse_reference(read_text_file(file, kMaxReferenceFile), file.string());
  r.dir = file.parent_path();
  return r;
}

void check_reference_vocab(const Reference& ref, int64_t vocab, const std::string& source) {
  for (const ReferenceCase& c : ref.cases) {
    for (const auto* ids : {&c.prompt_ids, &c.reference_ids}) {
      for (int32_t id : *ids) {
        if (id >= vocab) {
          throw Error(source + ": case '" + c.name + "' has token id " + std::to_string(id) +
                      ", outside the model's vocabulary of " + std::to_string(vocab) +
                      " (a reference for another model?)");
        }
      }
    }
  }
}

void save_reference(const Reference& r, const std::filesystem::path& file) {
  Json j = {{"format", "bringup-reference/1"},
            {"model", r.model},
            {"weights_sha256", r.weights_sha256},
            {"generator", r.generator}};
  if (r.hf_bf16_top1) j["hf_bf16_anchor"] = {{"top1", *r.hf_bf16_top1}, {"top5", *r.hf_bf16_top5}};
  j["cases"] = Json::array();
  for (const ReferenceCase& c : r.cases) {
    Json jc = {{"name", c.name},
               {"prompt_ids", c.prompt_ids},
               {"reference_ids", c.reference_ids},
               {"top5_ids", c.top5_ids},
               {"top5_logits", c.top5_logits}};
    // No teacher_forced_argmax_matches: for a reference the same path generated it would be the
    // count of ids, a claim rather than a measurement (hf_reference.py measures it).
    if (c.logits_npy) jc["logits_npy"] = *c.logits_npy;
    if (c.hidden_states_npy) jc["hidden_states_npy"] = *c.hidden_states_npy;
    j["cases"].push_back(std::move(jc));
  }
  std::ofstream out(file);
  if (!out) throw Error(file.string() + ": cannot create");
  out << j.dump(1) << "\n";
  if (!out) throw Error(file.string() + ": write failed");
}

}  // namespace bringup
