// Opening a Hugging Face checkpoint directory: config, generation config, safetensors weights
// (single file or shards with an index). Which tensors a config implies is the model family's
// knowledge (models/family.h); check_tensors checks a list of them.
#include "bringup/checkpoint.h"

#include <set>

#include "bringup/error.h"
#include "core/host_matrix.h"
#include "core/mapped_file.h"
#include "io/json_fields.h"
#include "io/safetensors.h"

namespace fs = std::filesystem;

namespace bringup {

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

float TensorView::at(int64_t i) const {
  const int64_t block = storage_block_elems(dtype);
  float f[256];  // the largest block
  convert_to_f32(dtype, data + storage_bytes(dtype, i / block * block), block, f);
  return f[i % block];
}

namespace {

std::string shape_string(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// Shard file names come from the index; they must name files inside the checkpoint directory.
void check_shard_name(const std::string& name, const std::string& index) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    throw Error(index + ": shard file name '" + name + "' must be a plain file name");
  }
}

}  // namespace

Checkpoint::Checkpoint(Checkpoint&&) noexcept = default;
Checkpoint& Checkpoint::operator=(Checkpoint&&) noexcept = default;
Checkpoint::~Checkpoint() = default;

Checkpoint Checkpoint::open(const fs::path& dir) {
  if (is_gguf_file(dir)) return open_gguf(dir);
  if (!fs::is_directory(dir)) {
    throw Error(dir.string() +
                ": not a checkpoint directory (expected config.json and "
                "model.safetensors inside) or a GGUF file");
  }
  Checkpoint ck;
  ck.dir_ = dir;
  ck.config_ = load_model_config(dir / "config.json");
  if (fs::exists(dir / "generation_config.json")) {
    ck.generation_ = load_generation_config(dir / "generation_config.json");
  }

  // Which files hold the weights, and which tensors the index promises in each.
  std::vector<std::string> shard_names;
  std::map<std::string, std::string> promised;  // tensor -> shard
  const fs::path index_path = dir / "model.safetensors.index.json";
  if (fs::exists(dir / "model.safetensors")) {
    shard_names.push_back("model.safetensors");
  } else if (fs::exists(index_path)) {
    const std::string index = index_path.string();
    const Json j = parse_json(read_text_file(index_path), index);
    const JsonFields f(j, index);
    const Json& map = f.value("weight_map");
    if (!map.is_object()) f.fail("weight_map", "must be an object of tensor name -> file");
    std::set<std::string> seen;
    for (const auto& [tensor, file] : map.items()) {
      if (!file.is_string()) f.fail("weight_map", "entry '" + tensor + "' must be a file name");
      const std::string name = file.get<std::string>();
      check_shard_name(name, index);
      promised[tensor] = name;
      if (seen.insert(name).second) shard_names.push_back(name);
    }
  } else {
    throw Error(dir.string() +
                ": no model.safetensors or model.safetensors.index.json in the checkpoint");
  }

  for (const std::string& shard : shard_names) {
    auto file = std::make_unique<MappedFile>(dir / shard);
    for (SafetensorsEntry& e : parse_safetensors(file->data(), file->size(), file->path())) {
      if (ck.tensors_.count(e.name)) {
        throw Error(file->path() + ": tensor '" + e.name + "' also appears in " +
                    ck.tensors_[e.name].file);
      }
      TensorView v{e.name, e.dtype, e.shape, file->data() + e.offset, e.bytes, file->path()};
      ck.tensors_.emplace(e.name, std::move(v));
    }
    ck.files_.push_back(std::move(file));
  }
  for (const auto& [tensor, shard] : promised) {
    auto it = ck.tensors_.find(tensor);
    if (it == ck.tensors_.end() || fs::path(it->second.file).filename() != shard) {
      throw Error((dir / shard).string() + ": tensor '" + tensor +
                  "' listed in model.safetensors.index.json is not in this file");
    }
  }
  return ck;
}

Checkpoint Checkpoint::from_memory(const std::string& label, const std::string& config_json,
                                   const std::string& generation_config_json,
                                   std::vector<TensorView> tensors) {
  Checkpoint ck;
  ck.dir_ = label;
  ck.label_ = label;
  ck.config_ = parse_model_config(config_json, label + " config");
  if (!generation_config_json.empty()) {
    ck.generation_ = parse_generation_config(generation_config_json, label + " generation config");
  }
  for (TensorView& v : tensors) {
    const std::string where = label + ": tensor '" + v.name + "'";
    uint64_t numel = 1;
    for (int64_t d : v.shape) {
      if (d < 0 || (d > 0 && numel > (uint64_t{1} << 48) / static_cast<uint64_t>(d))) {
        throw Error(where + " has an invalid shape");
      }
      numel *= static_cast<uint64_t>(d);
    }
    if (v.dtype != StorageDType::kF32 && v.dtype != StorageDType::kBF16 &&
        v.dtype != StorageDType::kF16) {
      throw Error(where + " must be F32, BF16 or F16");
    }
    if (numel * storage_dtype_size(v.dtype) != v.bytes) {
      throw Error(where + " holds " + std::to_string(v.bytes) + " bytes, its shape in " +
                  std::string(storage_dtype_name(v.dtype)) + " needs " +
                  std::to_string(numel * storage_dtype_size(v.dtype)));
    }
    if (v.data == nullptr && v.bytes > 0) throw Error(where + " has no data");
    v.file = label;
    const std::string name = v.name;
    if (!ck.tensors_.emplace(name, std::move(v)).second) throw Error(where + " is given twice");
  }
  return ck;
}

void check_tensors(const std::vector<ExpectedTensor>& expected,
                   const std::map<std::string, TensorView>& tensors, const std::string& dir) {
  for (const ExpectedTensor& e : expected) {
    auto it = tensors.find(e.name);
    if (it == tensors.end()) {
      throw Error(dir + ": missing tensor '" + e.name + "' (its config implies shape " +
                  shape_string(e.shape) + ")");
    }
    if (it->second.shape != e.shape) {
      throw Error(it->second.file + ": tensor '" + e.name + "' has shape " +
                  shape_string(it->second.shape) + ", its config implies " + shape_string(e.shape));
    }
  }
}

const TensorView& Checkpoint::tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw Error(dir_.string() + ": missing tensor '" + name + "'");
  return it->second;
}

bool Checkpoint::has_tensor(const std::string& name) const {
  return tensors_.count(name) != 0;
}

std::string Checkpoint::storage_summary() const {
  std::map<std::string, int> count;
  for (const auto& [name, t] : tensors_) ++count[std::string(storage_dtype_name(t.dtype))];
  std::string s;
  for (const auto& [type, n] : count)
    s += (s.empty() ? "" : ", ") + type + " x " + std::to_string(n);
  return s;
}

std::vector<std::filesystem::path> Checkpoint::files() const {
  std::vector<std::filesystem::path> out;
  for (const auto& f : files_) out.emplace_back(f->path());
  return out;
}

size_t Checkpoint::weight_bytes() const {
  size_t n = 0;
  for (const auto& [name, t] : tensors_) n += t.bytes;
  return n;
}

void Checkpoint::release(const TensorView& t) const {
  for (const auto& f : files_) {
    // Tensors rearranged into memory of their own (owned_) are not in the mapping.
    if (f->path() == t.file && t.data >= f->data() && t.data + t.bytes <= f->data() + f->size()) {
      f->release(static_cast<size_t>(t.data - f->data()), t.bytes);
    }
  }
}

std::string Checkpoint::name() const {
  if (!label_.empty()) return label_;
  // weakly_canonical resolves "." and "..", and a trailing '/' would leave filename() empty.
  std::error_code ec;
  fs::path p = fs::weakly_canonical(dir_, ec);
  if (ec) p = dir_.lexically_normal();
  if (!p.has_filename()) p = p.parent_path();
  return p.filename().string();
}

}  // namespace bringup
