// The Python module's native part, bringup._bringup: the C++ API (checkpoints, devices, models,
// sequences and batched steps, the tokenizer and chat templates, generation with a streaming
// iterator, eval, compare) bound with pybind11. The pure-Python package around it
// (src/python/bringup/) adds the Hugging Face adapter, the batch API and the eval command.
//
// The GIL is released while the engine computes. Logits come back as NumPy arrays holding a copy:
// the engine's buffer is reused by its next step, so a view would change under the caller.
// Every bringup::Error becomes bringup.Error (a ValueError) with the engine's one-line message.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "bringup/bringup.h"
#include "core/host_matrix.h"
#include "device/device.h"
#include "eval/compare.h"
#include "eval/evaluate.h"
#include "runtime/generate.h"
#include "runtime/generation.h"

namespace py = pybind11;
using namespace bringup;

namespace {

// A checkpoint, and the Python objects whose memory it views (from_memory) kept alive with it.
struct PyCheckpoint {
  std::shared_ptr<Checkpoint> ck;
  py::object keepalive;
};

// A model, and what it must not outlive.
struct PyModel {
  std::unique_ptr<Model> model;
  std::shared_ptr<Device> device;
  std::shared_ptr<Checkpoint> ck;
};

struct PySequence {
  std::shared_ptr<PyModel> owner;  // the pool its blocks live in
  std::unique_ptr<Sequence> seq;
};

// Token ids from a list, tuple or integer array (NumPy or anything with __array__); `what` names
// the argument in errors. Ids are checked against the vocabulary by the engine.
std::vector<int32_t> ids_from(const py::handle& obj, const std::string& what) {
  py::array a;
  try {
    a = py::array::ensure(obj);
  } catch (const py::error_already_set&) {
  }
  if (!a) throw Error(what + ": expected a sequence of token ids");
  if (a.ndim() != 1) {
    throw Error(what + ": expected a 1-D sequence of token ids, got " + std::to_string(a.ndim()) +
                " dimensions");
  }
  const char kind = a.dtype().kind();
  if (a.size() > 0 && kind != 'i' && kind != 'u') {
    throw Error(what + ": token ids must be integers, got dtype " +
                std::string(py::str(a.dtype())));
  }
  std::vector<int32_t> out;
  out.reserve(static_cast<size_t>(a.size()));
  if (a.size() == 0) return out;
  auto arr = py::array_t<int64_t, py::array::forcecast>::ensure(a);
  auto r = arr.unchecked<1>();
  for (py::ssize_t i = 0; i < r.shape(0); ++i) {
    const int64_t v = r(i);
    if (v < INT32_MIN || v > INT32_MAX) {
      throw Error(what + ": id " + std::to_string(v) + " at index " + std::to_string(i) +
                  " is outside the vocabulary");
    }
    out.push_back(static_cast<int32_t>(v));
  }
  return out;
}

// A copy of rows x vocab logits as a float32 array ([vocab] when rows is -1).
py::array_t<float> logits_array(std::span<const float> l, int64_t rows, int64_t vocab) {
  std::vector<py::ssize_t> shape;
  if (rows < 0) {
    shape = {static_cast<py::ssize_t>(vocab)};
  } else {
    shape = {static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(vocab)};
  }
  py::array_t<float> out(shape);
  std::memcpy(out.mutable_data(), l.data(), l.size() * sizeof(float));
  return out;
}

py::dict config_dict(const ModelConfig& c) {
  py::dict d;
  d["model_type"] = c.model_type;
  d["vocab_size"] = c.vocab_size;
  d["hidden_size"] = c.hidden_size;
  d["intermediate_size"] = c.intermediate_size;
  d["num_hidden_layers"] = c.num_hidden_layers;
  d["num_attention_heads"] = c.num_attention_heads;
  d["num_key_value_heads"] = c.num_key_value_heads;
  d["head_dim"] = c.head_dim;
  d["rms_norm_eps"] = c.rms_norm_eps;
  d["rope_theta"] = c.rope_theta;
  d["rope_scaling_type"] = c.rope_scaling.type;
  d["max_position_embeddings"] = c.max_position_embeddings;
  d["context_length"] = c.context_length();
  d["tie_word_embeddings"] = c.tie_word_embeddings;
  return d;
}

py::dict generation_config_dict(const GenerationConfig& g) {
  py::dict d;
  d["bos_token_id"] = g.bos_token_id ? py::cast(*g.bos_token_id) : py::none();
  d["pad_token_id"] = g.pad_token_id ? py::cast(*g.pad_token_id) : py::none();
  d["eos_token_ids"] = g.eos_token_ids;
  d["do_sample"] = g.do_sample;
  d["temperature"] = g.temperature;
  d["top_k"] = g.top_k;
  d["top_p"] = g.top_p;
  d["min_p"] = g.min_p;
  d["repetition_penalty"] = g.repetition_penalty;
  d["max_new_tokens"] = g.max_new_tokens ? py::cast(*g.max_new_tokens) : py::none();
  return d;
}

StorageDType storage_dtype_from(const std::string& name, const std::string& tensor) {
  if (name == "float32" || name == "F32") return StorageDType::kF32;
  if (name == "bfloat16" || name == "BF16") return StorageDType::kBF16;
  if (name == "float16" || name == "F16") return StorageDType::kF16;
  throw Error("tensor '" + tensor + "': dtype " + name +
              " is not supported (expected float32, bfloat16 or float16)");
}

// Sampling settings: generation_config.json's (when a checkpoint is given), overridden by the
// keyword arguments that are not None, checked as `bringup generate` checks its flags.
GenerationSettings settings_from(const GenerationConfig* g, const Tokenizer* tok,
                                 const py::dict& kw) {
  GenerationSettings s = default_generation_settings(g ? *g : GenerationConfig{}, tok);
  auto given = [&](const char* k) { return kw.contains(k) && !kw[k].is_none(); };
  static const char* known[] = {"max_new_tokens",
                                "do_sample",
                                "temperature",
                                "top_k",
                                "top_p",
                                "min_p",
                                "repetition_penalty",
                                "frequency_penalty",
                                "presence_penalty",
                                "seed",
                                "stop",
                                "eos_token_ids"};
  for (const auto& [k, v] : kw) {
    const std::string key = py::str(k);
    if (std::find(std::begin(known), std::end(known), key) == std::end(known)) {
      throw Error("generate: unknown argument '" + key + "'");
    }
  }
  if (given("temperature")) {
    const double t = kw["temperature"].cast<double>();
    if (!(t >= 0)) throw Error("temperature must not be negative");
    s.sampling.temperature = t;
    s.sampling.do_sample = t > 0;
  }
  if (given("do_sample")) s.sampling.do_sample = kw["do_sample"].cast<bool>();
  if (given("top_k")) {
    const int64_t k = kw["top_k"].cast<int64_t>();
    if (k < 0) throw Error("top_k must not be negative");
    s.sampling.top_k = k;
  }
  if (given("top_p")) {
    const double p = kw["top_p"].cast<double>();
    if (!(p > 0 && p <= 1)) throw Error("top_p must be in (0, 1]");
    s.sampling.top_p = p;
  }
  if (given("min_p")) {
    const double p = kw["min_p"].cast<double>();
    if (!(p >= 0 && p <= 1)) throw Error("min_p must be in [0, 1]");
    s.sampling.min_p = p;
  }
  if (given("repetition_penalty")) {
    const double p = kw["repetition_penalty"].cast<double>();
    if (!(p > 0)) throw Error("repetition_penalty must be positive");
    s.sampling.repetition_penalty = p;
  }
  if (given("frequency_penalty"))
    s.sampling.frequency_penalty = kw["frequency_penalty"].cast<double>();
  if (given("presence_penalty"))
    s.sampling.presence_penalty = kw["presence_penalty"].cast<double>();
  s.sampling.seed = given("seed") ? kw["seed"].cast<uint64_t>() : std::random_device{}();
  if (given("max_new_tokens")) {
    const int64_t n = kw["max_new_tokens"].cast<int64_t>();
    if (n < 1) throw Error("max_new_tokens must be at least 1");
    s.max_new_tokens = n;
  }
  if (given("stop")) s.stop = kw["stop"].cast<std::vector<std::string>>();
  if (given("eos_token_ids")) s.eos_ids = kw["eos_token_ids"].cast<std::vector<int64_t>>();
  return s;
}

// A reply generated one token per __next__: the prompt is prefilled on the first, then each
// step decodes the last token and picks the next, exactly as runtime/generate.h's generate()
// with the generation policy of runtime/generation.h (what `bringup generate` runs).
class TextStream {
 public:
  TextStream(std::shared_ptr<PyModel> m, std::shared_ptr<Tokenizer> tok,
             std::vector<int32_t> prompt, GenerationSettings s)
      : m_(std::move(m)),
        tok_(std::move(tok)),
        prompt_(std::move(prompt)),
        gen_(s, tok_.get(), prompt_),
        seq_(m_->model->new_sequence()) {
    if (prompt_.empty()) throw Error("prompt: expected at least one token");
    const int64_t need = static_cast<int64_t>(prompt_.size()) + s.max_new_tokens - 1;
    if (need > m_->model->max_seq_len()) {
      throw Error("prompt of " + std::to_string(prompt_.size()) + " tokens plus " +
                  std::to_string(s.max_new_tokens) + " new tokens exceeds max_seq_len " +
                  std::to_string(m_->model->max_seq_len()));
    }
  }

  // The next piece of text (ids when there is no tokenizer); None at the end.
  std::optional<std::string> next() {
    if (done_) return std::nullopt;
    {
      py::gil_scoped_release unlocked;
      std::span<const float> logits = gen_.ids().empty()
                                          ? m_->model->prefill(*seq_, prompt_)
                                          : m_->model->decode(*seq_, gen_.ids().back());
      gen_.pick(logits);
    }
    const bool last = gen_.finished() ||
                      static_cast<int64_t>(gen_.ids().size()) >= gen_.settings().max_new_tokens;
    if (last) done_ = true;
    if (!tok_) return std::to_string(gen_.ids().back());
    return gen_.piece();
  }

  const std::vector<int32_t>& ids() const { return gen_.ids(); }
  const std::string& text() const { return gen_.text(); }
  std::string finish_reason() const {
    if (gen_.finish_reason() != FinishReason::kNone) {
      return finish_reason_name(gen_.finish_reason());
    }
    return done_ ? "length" : "";
  }

 private:
  std::shared_ptr<PyModel> m_;
  std::shared_ptr<Tokenizer> tok_;
  std::vector<int32_t> prompt_;
  SequenceGenerator gen_;
  std::unique_ptr<Sequence> seq_;
  bool done_ = false;
};

std::shared_ptr<PyModel> build(const PyCheckpoint& ck, const std::shared_ptr<Device>& device,
                               int64_t max_seq_len, const std::string& precision,
                               const std::string& kv_precision, int64_t kv_budget_tokens,
                               int max_sequences, int kv_block_size, int64_t prefill_chunk,
                               int64_t max_logit_rows, const std::string& weight_cache,
                               bool weight_cache_mmap) {
  ModelOptions o;
  o.max_seq_len = max_seq_len;
  o.precision =
      precision.empty() ? default_precision(ck.ck->dir().string()) : parse_precision(precision);
  if (!kv_precision.empty()) o.kv_precision = parse_kv_precision(kv_precision);
  o.kv_budget_tokens = kv_budget_tokens;
  o.max_sequences = max_sequences;
  o.kv_block_size = kv_block_size;
  o.prefill_chunk = prefill_chunk;
  o.max_logit_rows = max_logit_rows;
  o.weight_cache = weight_cache;
  o.map_weight_cache = weight_cache_mmap;
  auto m = std::make_shared<PyModel>();
  m->device = device;
  m->ck = ck.ck;
  py::gil_scoped_release unlocked;
  m->model = build_model(*ck.ck, *device, o);
  return m;
}

Sequence& seq_of(PySequence& s, const PyModel& m, const char* what) {
  if (!s.seq) throw Error(std::string(what) + ": the sequence was released");
  if (s.owner.get() != &m)
    throw Error(std::string(what) + ": the sequence belongs to another model");
  return *s.seq;
}

// Runs ids[i] after what seqs[i] holds, every sequence in the same steps of at most
// max_step_rows() rows (and max_logit_rows logit rows). Returns per sequence the logits of its
// last new position ([vocab]) or of every new one ([n, vocab]).
// (Not inlined: GCC 12 reports a false -Wfree-nonheap-object when it is.)
[[gnu::noinline]] std::vector<py::array_t<float>> run_rows(
    PyModel& m, const std::vector<PySequence*>& seqs, const std::vector<std::vector<int32_t>>& ids,
    bool all_positions) {
  Model& model = *m.model;
  if (seqs.size() != ids.size()) {
    throw Error("forward: " + std::to_string(seqs.size()) + " sequences but " +
                std::to_string(ids.size()) + " id lists");
  }
  std::vector<Sequence*> s(seqs.size());
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (!seqs[i]) throw Error("forward: sequence " + std::to_string(i) + " is None");
    s[i] = &seq_of(*seqs[i], m, "forward");
    for (size_t j = 0; j < i; ++j) {
      if (s[j] == s[i]) throw Error("forward: sequence " + std::to_string(i) + " is given twice");
    }
    if (ids[i].empty()) throw Error("forward: sequence " + std::to_string(i) + " has no new ids");
  }
  const int64_t vocab = model.config().vocab_size;
  std::vector<std::vector<float>> out(seqs.size());
  {
    py::gil_scoped_release unlocked;
    const int64_t max_rows = model.max_step_rows();
    std::vector<size_t> next(seqs.size(), 0);
    std::vector<BatchRow> rows;
    std::vector<size_t> owner;
    size_t left = 0;
    for (const auto& v : ids) left += v.size();
    while (left > 0) {
      rows.clear();
      owner.clear();
      // Each sequence continues from its length, its rows in order within the step.
      for (size_t i = 0; i < seqs.size() && static_cast<int64_t>(rows.size()) < max_rows; ++i) {
        const size_t first = next[i];
        while (next[i] < ids[i].size() && static_cast<int64_t>(rows.size()) < max_rows) {
          const size_t j = next[i]++;
          const int64_t pos = s[i]->length() + static_cast<int64_t>(j - first);
          rows.push_back({s[i], ids[i][j], pos, all_positions || j + 1 == ids[i].size()});
          owner.push_back(i);
        }
      }
      const std::span<const float> l = model.step(rows);
      size_t k = 0;
      for (size_t r = 0; r < rows.size(); ++r) {
        if (!rows[r].logits) continue;
        std::vector<float>& o = out[owner[r]];
        if (!all_positions) o.clear();
        o.insert(o.end(), l.begin() + k * vocab, l.begin() + (k + 1) * vocab);
        ++k;
      }
      left -= rows.size();
    }
  }
  std::vector<py::array_t<float>> result;
  for (size_t i = 0; i < seqs.size(); ++i) {
    result.push_back(
        logits_array(out[i], all_positions ? static_cast<int64_t>(ids[i].size()) : -1, vocab));
  }
  return result;
}

}  // namespace

PYBIND11_MODULE(_bringup, m) {
  m.doc() = "bringup: language models on a compute device, proven against Hugging Face";
  py::register_exception<Error>(m, "Error", PyExc_ValueError);

  py::class_<Device, std::shared_ptr<Device>>(m, "Device")
      .def(py::init([](int threads) {
             if (threads < 0) throw Error("threads must not be negative");
             return make_cpu_device(threads);
           }),
           py::arg("threads") = 0, "The CPU of this machine; threads = 0 uses every core.")
      .def_property_readonly("name", &Device::name)
      .def_property_readonly("threads", &Device::threads)
      .def("__repr__", [](const Device& d) { return "<bringup.Device " + d.name() + ">"; });

  py::class_<PyCheckpoint>(m, "Checkpoint")
      .def_static(
          "open",
          [](const std::string& dir) {
            std::shared_ptr<Checkpoint> ck;
            {
              py::gil_scoped_release unlocked;  // (no Python object is touched in here)
              ck = std::make_shared<Checkpoint>(Checkpoint::open(dir));
            }
            return PyCheckpoint{std::move(ck), py::none()};
          },
          py::arg("dir"), "A Hugging Face checkpoint directory or a GGUF file.")
      .def_static(
          "from_memory",
          [](const std::string& label, const std::string& config_json,
             const std::string& generation_json, const py::list& tensors) {
            // tensors: (name, dtype name, shape, data pointer, bytes, owner) per tensor; the
            // owners stay referenced by the checkpoint.
            std::vector<TensorView> views;
            for (const py::handle& t : tensors) {
              const auto tup = t.cast<py::tuple>();
              if (tup.size() != 6) throw Error("from_memory: each tensor is a 6-tuple");
              TensorView v;
              v.name = tup[0].cast<std::string>();
              v.dtype = storage_dtype_from(tup[1].cast<std::string>(), v.name);
              v.shape = tup[2].cast<std::vector<int64_t>>();
              v.data = reinterpret_cast<const std::byte*>(tup[3].cast<uintptr_t>());
              v.bytes = tup[4].cast<size_t>();
              views.push_back(std::move(v));
            }
            return PyCheckpoint{std::make_shared<Checkpoint>(Checkpoint::from_memory(
                                    label, config_json, generation_json, std::move(views))),
                                tensors};
          },
          py::arg("label"), py::arg("config_json"), py::arg("generation_config_json"),
          py::arg("tensors"))
      .def_property_readonly("name", [](const PyCheckpoint& c) { return c.ck->name(); })
      .def_property_readonly("config",
                             [](const PyCheckpoint& c) { return config_dict(c.ck->config()); })
      .def_property_readonly(
          "generation_config",
          [](const PyCheckpoint& c) { return generation_config_dict(c.ck->generation_config()); })
      .def_property_readonly("tensor_names",
                             [](const PyCheckpoint& c) {
                               std::vector<std::string> names;
                               for (const auto& [n, t] : c.ck->tensors()) names.push_back(n);
                               return names;
                             })
      .def(
          "tensor_type",
          [](const PyCheckpoint& c, const std::string& name) {
            return std::string(storage_dtype_name(c.ck->tensor(name).dtype));
          },
          py::arg("name"), "How the checkpoint stores a tensor: \"BF16\", \"Q4_K\", ...")
      .def(
          "tensor",
          [](const PyCheckpoint& c, const std::string& name) {
            // Hugging Face orientation and names; block types decoded exactly as ggml does.
            const HostMatrix m = HostMatrix::of(c.ck->tensor(name));
            const auto& shape = c.ck->tensor(name).shape;
            py::array_t<float> out(std::vector<py::ssize_t>(shape.begin(), shape.end()));
            float* dst = out.mutable_data();
            for (int64_t r = 0; r < m.rows; ++r) m.row(r, dst + r * m.cols);
            return out;
          },
          py::arg("name"), "A tensor as fp32 (a NumPy array), by its Hugging Face name.");

  py::class_<PySequence>(m, "Sequence")
      .def_property_readonly("length",
                             [](const PySequence& s) { return s.seq ? s.seq->length() : 0; })
      .def("__len__", [](const PySequence& s) { return s.seq ? s.seq->length() : 0; })
      .def_property_readonly("max_length",
                             [](const PySequence& s) { return s.seq ? s.seq->max_length() : 0; })
      .def(
          "truncate",
          [](PySequence& s, int64_t n) {
            if (!s.seq) throw Error("truncate: the sequence was released");
            if (n < 0 || n > s.seq->length()) {
              throw Error("truncate: n must be in [0, " + std::to_string(s.seq->length()) +
                          "], not " + std::to_string(n));
            }
            s.seq->truncate(n);
          },
          py::arg("n"), "Forgets positions from n on.")
      .def(
          "release", [](PySequence& s) { s.seq.reset(); },
          "Returns the sequence's KV blocks to the pool now.")
      .def_property_readonly("block_table", [](const PySequence& s) {
        return s.seq ? s.seq->block_table() : std::vector<int32_t>{};
      });

  py::class_<PyModel, std::shared_ptr<PyModel>>(m, "Model")
      .def_property_readonly("config",
                             [](const PyModel& p) { return config_dict(p.model->config()); })
      .def_property_readonly(
          "precision",
          [](const PyModel& p) { return std::string(precision_name(p.model->precision())); })
      .def_property_readonly(
          "kv_precision",
          [](const PyModel& p) {
            return std::string(kv_precision_name(p.model->kv_precision(), p.model->precision()));
          })
      .def_property_readonly("max_seq_len", [](const PyModel& p) { return p.model->max_seq_len(); })
      .def_property_readonly("weight_cache",
                             [](const PyModel& p) {
                               const WeightCacheReport& r = p.model->weight_cache();
                               return py::dict(
                                   py::arg("state") = std::string(weight_cache_state_name(r.state)),
                                   py::arg("file") = r.file.string(), py::arg("reason") = r.reason,
                                   py::arg("bytes") = r.bytes, py::arg("mapped") = r.mapped);
                             })
      .def_property_readonly("vocab_size",
                             [](const PyModel& p) { return p.model->config().vocab_size; })
      .def_property_readonly("max_step_rows",
                             [](const PyModel& p) { return p.model->max_step_rows(); })
      .def_property_readonly("weight_bytes",
                             [](const PyModel& p) { return p.model->weight_bytes(); })
      .def_property_readonly("kv_cache_bytes",
                             [](const PyModel& p) { return p.model->kv_cache_bytes(); })
      .def_property_readonly("device", [](const PyModel& p) { return p.device; })
      .def("kv_pool",
           [](const PyModel& p) {
             const KvPoolStats s = p.model->kv_pool();
             py::dict d;
             d["block_size"] = s.block_size;
             d["total_blocks"] = s.total_blocks;
             d["free_blocks"] = s.free_blocks;
             d["budget_tokens"] = s.budget_tokens;
             d["cached_blocks"] = s.cached_blocks;
             return d;
           })
      .def("new_sequence",
           [](const std::shared_ptr<PyModel>& p) {
             return PySequence{p, p->model->new_sequence()};
           })
      .def(
          "fork",
          [](const std::shared_ptr<PyModel>& p, PySequence& s) {
            return PySequence{p, p->model->fork(seq_of(s, *p, "fork"))};
          },
          py::arg("seq"), "A sequence sharing seq's KV blocks until either writes (copy-on-write).")
      .def(
          "prefill",
          [](PyModel& p, PySequence& s, const py::handle& ids, bool all_positions) {
            Sequence& seq = seq_of(s, p, "prefill");
            const std::vector<int32_t> v = ids_from(ids, "prefill: ids");
            if (v.empty()) throw Error("prefill: ids must hold at least one token");
            std::span<const float> l;
            {
              py::gil_scoped_release unlocked;
              l = p.model->prefill(seq, v, all_positions);
            }
            return logits_array(l, all_positions ? static_cast<int64_t>(v.size()) : -1,
                                p.model->config().vocab_size);
          },
          py::arg("seq"), py::arg("ids"), py::arg("all_positions") = false,
          "Runs ids after what seq holds; logits of the last position ([vocab]) or of every one.")
      .def(
          "decode",
          [](PyModel& p, PySequence& s, int64_t id) {
            Sequence& seq = seq_of(s, p, "decode");
            // The engine checks the vocabulary; only what does not fit its id type stops here.
            if (id < INT32_MIN || id > INT32_MAX) {
              throw Error("decode: id " + std::to_string(id) + " is outside the vocabulary");
            }
            std::span<const float> l;
            {
              py::gil_scoped_release unlocked;
              l = p.model->decode(seq, static_cast<int32_t>(id));
            }
            return logits_array(l, -1, p.model->config().vocab_size);
          },
          py::arg("seq"), py::arg("id"))
      .def(
          "forward",
          [](PyModel& p, std::vector<PySequence*> seqs, const py::list& ids, bool all_positions) {
            std::vector<std::vector<int32_t>> v;
            for (size_t i = 0; i < ids.size(); ++i) {
              v.push_back(ids_from(ids[i], "forward: ids[" + std::to_string(i) + "]"));
            }
            return run_rows(p, seqs, v, all_positions);
          },
          py::arg("seqs"), py::arg("ids"), py::arg("all_positions") = false,
          "Runs ids[i] after seqs[i] for every i in shared batched steps.")
      .def(
          "generate_stream",
          [](const std::shared_ptr<PyModel>& p, const py::handle& prompt,
             const std::shared_ptr<Tokenizer>& tok, const PyCheckpoint* ck, const py::kwargs& kw) {
            auto s = settings_from(ck ? &ck->ck->generation_config() : nullptr, tok.get(), kw);
            return std::make_unique<TextStream>(p, tok, ids_from(prompt, "prompt"), std::move(s));
          },
          py::arg("prompt"), py::arg("tokenizer") = nullptr, py::arg("checkpoint") = nullptr)
      .def(
          "evaluate",
          [](PyModel& p, const std::string& reference_file, const std::string& reference_json,
             const std::vector<py::array_t<float, py::array::forcecast>>& logits,
             bool prefill_decode, const std::string& model_name, const PyCheckpoint* ck,
             const py::object& prompt, int64_t max_new_tokens) {
            Scoring s;
            if (!reference_file.empty()) {
              s = scoring_from_file(reference_file, p.model->config().vocab_size);
            } else if (reference_json.empty()) {
              if (!ck)
                throw Error("evaluate: give a reference file, reference cases or the checkpoint");
              std::vector<int32_t> ids;
              if (!prompt.is_none()) ids = ids_from(prompt, "evaluate: prompt");
              py::gil_scoped_release unlocked;
              s = scoring_from_fp32(*ck->ck, *p.device, ids, max_new_tokens, 0);
            } else {
              s.source = "the Hugging Face model in this process";
              s.ref = parse_reference(reference_json, s.source);
              check_reference_vocab(s.ref, p.model->config().vocab_size, s.source);
              for (const auto& a : logits) s.logits.emplace_back(a.data(), a.data() + a.size());
            }
            EvalOptions o;
            o.prefill_decode = prefill_decode;
            EvalReport r;
            {
              py::gil_scoped_release unlocked;
              r = evaluate(*p.model, s, o, model_name);
            }
            py::list cases;
            for (const CaseScore& c : r.cases) {
              py::dict d;
              d["name"] = c.name;
              d["prompt_len"] = c.prompt_len;
              d["steps"] = c.steps;
              d["top1"] = c.top1;
              d["top5"] = c.top5;
              d["max_abs_logit_err"] = c.max_abs_logit_err;
              cases.append(d);
            }
            return py::make_tuple(r.metrics.dump(), cases);
          },
          py::arg("reference_file") = "", py::arg("reference_json") = "",
          py::arg("logits") = std::vector<py::array_t<float>>{}, py::arg("prefill_decode") = false,
          py::arg("model_name") = "", py::arg("checkpoint") = nullptr,
          py::arg("prompt") = py::none(), py::arg("max_new_tokens") = 20,
          "Teacher-forces a reference through the model: a bringup-reference/1 file, cases given "
          "as its JSON (with full logits per case, or empty arrays), or the fp32 path of "
          "`checkpoint` on `prompt`. Returns (YT_METRICS JSON, per-case scores).")
      .def(
          "compare",
          [](PyModel& p, const std::string& reference_file, const py::object& prompt,
             const PyCheckpoint* ck, double pcc, const std::string& model_name) {
            if (!(pcc > 0.0 && pcc <= 1.0)) throw Error("pcc must be in (0, 1]");
            LayerBaseline base;
            LayerComparison cmp;
            std::vector<int32_t> ids;
            if (!prompt.is_none()) ids = ids_from(prompt, "compare: prompt");
            {
              py::gil_scoped_release unlocked;
              if (!reference_file.empty()) {
                base = baseline_from_reference(reference_file, p.model->config());
              } else {
                if (!ck) throw Error("compare: give a reference file or the checkpoint");
                base = baseline_from_fp32(*ck->ck, *p.device, ids);
              }
              cmp = compare_layers(*p.model, base);
            }
            return cmp.to_json(model_name, std::string(precision_name(p.model->precision())), pcc)
                .dump();
          },
          py::arg("reference_file") = "", py::arg("prompt") = py::none(),
          py::arg("checkpoint") = nullptr, py::arg("pcc") = 0.99, py::arg("model_name") = "");

  m.def(
      "build_model", &build, py::arg("checkpoint"), py::arg("device"), py::arg("max_seq_len") = 0,
      py::arg("precision") = "", py::arg("kv_precision") = "", py::arg("kv_budget_tokens") = 0,
      py::arg("max_sequences") = 1, py::arg("kv_block_size") = 32, py::arg("prefill_chunk") = 512,
      py::arg("max_logit_rows") = 0, py::arg("weight_cache") = "",
      py::arg("weight_cache_mmap") = false,
      "A model on a device; every ModelOptions field is a keyword argument. precision \"\": native "
      "for a GGUF file, bfp8-mixed otherwise; kv_precision \"\": the policy's KV format (fp32 "
      "under fp32, else bf16), or fp32, bf16, bfp8; weight_cache: a directory for the "
      "packed-weight cache (\"\": none; Model.weight_cache says what the load did); "
      "weight_cache_mmap: use the mapped file's pages instead of a copy (faster load, slower "
      "decode).");

  py::class_<TextStream>(m, "TextStream")
      .def("__iter__", [](TextStream& s) -> TextStream& { return s; })
      .def("__next__",
           [](TextStream& s) {
             std::optional<std::string> piece = s.next();
             if (!piece) throw py::stop_iteration();
             return py::bytes(*piece).attr("decode")("utf-8", "replace");
           })
      .def_property_readonly("ids", &TextStream::ids)
      .def_property_readonly("text", &TextStream::text)
      .def_property_readonly("finish_reason", &TextStream::finish_reason);

  py::class_<Tokenizer, std::shared_ptr<Tokenizer>>(m, "Tokenizer")
      .def_static(
          "load",
          [](const std::string& dir) { return std::make_shared<Tokenizer>(Tokenizer::load(dir)); },
          py::arg("dir"))
      .def(
          "encode",
          [](const Tokenizer& t, const std::string& text, bool add_special_tokens) {
            py::gil_scoped_release unlocked;
            return t.encode(text, add_special_tokens);
          },
          py::arg("text"), py::arg("add_special_tokens") = false,
          "Text to ids; add_special_tokens also adds the BOS id where the tokenizer asks for one "
          "(add_bos_token).")
      .def_property_readonly("adds_bos", &Tokenizer::adds_bos)
      .def(
          "decode",
          [](const Tokenizer& t, const py::handle& ids) {
            const std::string s = t.decode(ids_from(ids, "decode: ids"));
            return py::bytes(s).attr("decode")("utf-8", "replace");
          },
          py::arg("ids"))
      .def_static(
          "load_if_present",
          [](const std::string& dir) -> std::shared_ptr<Tokenizer> {
            std::optional<Tokenizer> t = Tokenizer::load_if_present(dir);
            return t ? std::make_shared<Tokenizer>(std::move(*t)) : nullptr;
          },
          py::arg("dir"), "load(dir), or None when there is no tokenizer there.")
      .def("token_id", &Tokenizer::token_id, py::arg("token"))
      .def("is_special", &Tokenizer::is_special, py::arg("id"))
      .def_property_readonly("vocab_size", &Tokenizer::vocab_size)
      .def_property_readonly("chat_template", &Tokenizer::chat_template)
      .def_property_readonly("eos_token", &Tokenizer::eos_token)
      .def_property_readonly("bos_token", &Tokenizer::bos_token)
      .def(
          "apply_chat_template",
          [](const Tokenizer& t, const py::list& messages, bool add_generation_prompt,
             bool tokenize) -> py::object {
            std::vector<ChatMessage> msgs;
            for (size_t i = 0; i < messages.size(); ++i) {
              const std::string where = "messages[" + std::to_string(i) + "]";
              if (!py::isinstance<py::dict>(messages[i])) {
                throw Error(where + ": expected a dict with 'role' and 'content'");
              }
              const auto d = messages[i].cast<py::dict>();
              if (!d.contains("role") || !py::isinstance<py::str>(d["role"]))
                throw Error(where + ".role: expected a string");
              if (!d.contains("content") || !py::isinstance<py::str>(d["content"]))
                throw Error(where + ".content: expected a string");
              msgs.push_back({d["role"].cast<std::string>(), d["content"].cast<std::string>()});
            }
            const std::string text = apply_chat_template(t, msgs, add_generation_prompt);
            if (tokenize) return py::cast(t.encode(text));
            return py::bytes(text).attr("decode")("utf-8", "replace");
          },
          py::arg("messages"), py::arg("add_generation_prompt") = true,
          py::arg("tokenize") = false);
}
