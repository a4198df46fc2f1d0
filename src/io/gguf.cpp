#include "io/gguf.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "bringup/error.h"

namespace bringup {

namespace {

// GGUF metadata value types.
enum : uint32_t {
  kU8 = 0,
  kI8,
  kU16,
  kI16,
  kU32,
  kI32,
  kF32,
  kBool,
  kString,
  kArray,
  kU64,
  kI64,
  kF64,
};

const char* value_type_name(uint32_t t) {
  static const char* names[] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                "int32",  "float32", "bool",   "string", "array",
                                "uint64", "int64",   "float64"};
  return t <= kF64 ? names[t] : "unknown";
}

// The smallest encoding of one value of type t (for bounding array counts before allocating).
uint64_t min_value_bytes(uint32_t t) {
  switch (t) {
    case kU8:
    case kI8:
    case kBool:
      return 1;
    case kU16:
    case kI16:
      return 2;
    case kU32:
    case kI32:
    case kF32:
      return 4;
    case kString:
    case kU64:
    case kI64:
    case kF64:
      return 8;
    case kArray:
      return 12;
  }
  return 1;
}

class Reader {
 public:
  Reader(const std::byte* data, size_t size, const std::string& file)
      : data_(data), size_(size), file_(file) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(file_ + ": " + what + " (at byte " + std::to_string(pos_) + ")");
  }
  uint64_t left() const { return size_ - pos_; }
  uint64_t pos() const { return pos_; }

  template <typename T>
  T get(const char* what) {
    if (left() < sizeof(T)) fail(std::string("truncated: ") + what + " runs past the end");
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string string(const char* what) {
    const uint64_t n = get<uint64_t>(what);
    if (n > left()) {
      fail(std::string(what) + " has length " + std::to_string(n) + ", past the end of the file");
    }
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(n));
    pos_ += n;
    return s;
  }

  Json value(uint32_t type, const std::string& key, uint64_t depth) {
    switch (type) {
      case kU8:
        return get<uint8_t>(key.c_str());
      case kI8:
        return get<int8_t>(key.c_str());
      case kU16:
        return get<uint16_t>(key.c_str());
      case kI16:
        return get<int16_t>(key.c_str());
      case kU32:
        return get<uint32_t>(key.c_str());
      case kI32:
        return get<int32_t>(key.c_str());
      case kF32:
        return get<float>(key.c_str());
      case kU64:
        return get<uint64_t>(key.c_str());
      case kI64:
        return get<int64_t>(key.c_str());
      case kF64:
        return get<double>(key.c_str());
      case kBool: {
        const uint8_t b = get<uint8_t>(key.c_str());
        if (b > 1)
          fail("metadata '" + key + "': bool value " + std::to_string(b) + " is not 0 or 1");
        return b == 1;
      }
      case kString:
        return string(("metadata '" + key + "'").c_str());
      case kArray: {
        if (depth >= kMaxGgufArrayDepth) {
          fail("metadata '" + key + "': arrays nested deeper than " +
               std::to_string(kMaxGgufArrayDepth));
        }
        const uint32_t elem = get<uint32_t>(key.c_str());
        if (elem > kF64) {
          fail("metadata '" + key + "': unknown array element type " + std::to_string(elem));
        }
        const uint64_t n = get<uint64_t>(key.c_str());
        if (n > left() / min_value_bytes(elem)) {
          fail("metadata '" + key + "': array of " + std::to_string(n) + " " +
               value_type_name(elem) + " values does not fit in the file");
        }
        Json a = Json::array();
        a.get_ref<Json::array_t&>().reserve(static_cast<size_t>(n));
        for (uint64_t i = 0; i < n; ++i) a.push_back(value(elem, key, depth + 1));
        return a;
      }
    }
    fail("metadata '" + key + "': unknown value type " + std::to_string(type));
  }

 private:
  const std::byte* data_;
  size_t size_;
  std::string file_;
  uint64_t pos_ = 0;
};

bool dtype_of(uint32_t id, StorageDType& t) {
  switch (id) {
    case kGgmlTypeF32:
      t = StorageDType::kF32;
      return true;
    case kGgmlTypeF16:
      t = StorageDType::kF16;
      return true;
    case kGgmlTypeBF16:
      t = StorageDType::kBF16;
      return true;
    case kGgmlTypeQ8_0:
      t = StorageDType::kQ8_0;
      return true;
    case kGgmlTypeQ4_0:
      t = StorageDType::kQ4_0;
      return true;
    case kGgmlTypeQ4_1:
      t = StorageDType::kQ4_1;
      return true;
    case kGgmlTypeQ5_0:
      t = StorageDType::kQ5_0;
      return true;
    case kGgmlTypeQ5_1:
      t = StorageDType::kQ5_1;
      return true;
    case kGgmlTypeQ4_K:
      t = StorageDType::kQ4_K;
      return true;
    case kGgmlTypeQ5_K:
      t = StorageDType::kQ5_K;
      return true;
    case kGgmlTypeQ6_K:
      t = StorageDType::kQ6_K;
      return true;
  }
  return false;
}

// ggml types that exist but bringup does not read, named in the error.
const char* known_unsupported(uint32_t id) {
  switch (id) {
    case 9:
      return "Q8_1";
    case 10:
      return "Q2_K";
    case 11:
      return "Q3_K";
    case 15:
      return "Q8_K";
    case 16:
      return "IQ2_XXS";
    case 17:
      return "IQ2_XS";
    case 18:
      return "IQ3_XXS";
    case 19:
      return "IQ1_S";
    case 20:
      return "IQ4_NL";
    case 21:
      return "IQ3_S";
    case 22:
      return "IQ2_S";
    case 23:
      return "IQ4_XS";
    case 24:
      return "I8";
    case 25:
      return "I16";
    case 26:
      return "I32";
    case 27:
      return "I64";
    case 28:
      return "F64";
    case 29:
      return "IQ1_M";
    case 34:
      return "TQ1_0";
    case 35:
      return "TQ2_0";
    case 39:
      return "MXFP4";
  }
  return nullptr;
}

}  // namespace

uint32_t ggml_type_id(StorageDType t) {
  switch (t) {
    case StorageDType::kF32:
      return kGgmlTypeF32;
    case StorageDType::kF16:
      return kGgmlTypeF16;
    case StorageDType::kBF16:
      return kGgmlTypeBF16;
    case StorageDType::kQ8_0:
      return kGgmlTypeQ8_0;
    case StorageDType::kQ4_0:
      return kGgmlTypeQ4_0;
    case StorageDType::kQ4_1:
      return kGgmlTypeQ4_1;
    case StorageDType::kQ5_0:
      return kGgmlTypeQ5_0;
    case StorageDType::kQ5_1:
      return kGgmlTypeQ5_1;
    case StorageDType::kQ4_K:
      return kGgmlTypeQ4_K;
    case StorageDType::kQ5_K:
      return kGgmlTypeQ5_K;
    case StorageDType::kQ6_K:
      return kGgmlTypeQ6_K;
  }
  return kGgmlTypeF32;
}

GgufFile parse_gguf(const std::byte* data, size_t size, const std::string& file) {
  Reader r(data, size, file);
  GgufFile g;
  const uint32_t magic = r.get<uint32_t>("the magic");
  if (magic != 0x46554747u) r.fail("not a GGUF file (the first 4 bytes are not 'GGUF')");
  g.version = r.get<uint32_t>("the version");
  if (g.version == 0x02000000u || g.version == 0x03000000u) {
    r.fail("big-endian GGUF files are not supported");
  }
  if (g.version != 2 && g.version != 3) {
    r.fail("GGUF version " + std::to_string(g.version) + " is not supported (expected 2 or 3)");
  }
  const uint64_t n_tensors = r.get<uint64_t>("the tensor count");
  const uint64_t n_kv = r.get<uint64_t>("the metadata count");
  if (n_tensors > kMaxGgufTensors || n_tensors > r.left() / 24) {
    r.fail("tensor count " + std::to_string(n_tensors) + " does not fit in the file");
  }
  if (n_kv > r.left() / 13) {
    r.fail("metadata count " + std::to_string(n_kv) + " does not fit in the file");
  }
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string key = r.string("a metadata key");
    if (key.empty()) r.fail("metadata key " + std::to_string(i) + " is empty");
    if (g.metadata.contains(key)) r.fail("metadata key '" + key + "' appears twice");
    const uint32_t type = r.get<uint32_t>(("the type of metadata '" + key + "'").c_str());
    g.metadata[key] = r.value(type, key, 0);
  }
  if (g.metadata.contains("general.alignment")) {
    const Json& a = g.metadata["general.alignment"];
    if (!a.is_number_unsigned() || a.get<uint64_t>() == 0 ||
        (a.get<uint64_t>() & (a.get<uint64_t>() - 1)) != 0 || a.get<uint64_t>() > (1u << 20)) {
      throw Error(file + ": general.alignment must be a power of two up to 1 MiB");
    }
    g.alignment = a.get<uint64_t>();
  }

  std::set<std::string> names;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t;
    t.name = r.string("a tensor name");
    const std::string where = "tensor '" + t.name + "'";
    if (t.name.empty()) r.fail("tensor " + std::to_string(i) + " has an empty name");
    if (!names.insert(t.name).second) r.fail(where + " appears twice");
    const uint32_t n_dims = r.get<uint32_t>((where + " dimension count").c_str());
    if (n_dims < 1 || n_dims > 4) {
      r.fail(where + " has " + std::to_string(n_dims) + " dimensions (expected 1 to 4)");
    }
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t n = r.get<uint64_t>((where + " dimensions").c_str());
      if (n == 0 || n > (uint64_t{1} << 40) || numel > (uint64_t{1} << 40) / n) {
        r.fail(where + " has dimensions whose product overflows or is zero");
      }
      numel *= n;
      t.ne.push_back(static_cast<int64_t>(n));
    }
    const uint32_t type = r.get<uint32_t>((where + " type").c_str());
    if (!dtype_of(type, t.dtype)) {
      if (const char* name = known_unsupported(type)) {
        r.fail(where + " has type " + name +
               ", which bringup does not read (F32, F16, BF16, "
               "Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)");
      }
      r.fail(where + " has unknown type id " + std::to_string(type));
    }
    if (t.ne[0] % storage_block_elems(t.dtype) != 0) {
      r.fail(where + " has rows of " + std::to_string(t.ne[0]) + " elements, not whole " +
             std::string(storage_dtype_name(t.dtype)) + " blocks of " +
             std::to_string(storage_block_elems(t.dtype)));
    }
    t.bytes = storage_bytes(t.dtype, static_cast<int64_t>(numel));
    t.offset = r.get<uint64_t>((where + " offset").c_str());
    if (t.offset % g.alignment != 0) {
      r.fail(where + " offset " + std::to_string(t.offset) +
             " is not a multiple of the alignment " + std::to_string(g.alignment));
    }
    g.tensors.push_back(std::move(t));
  }
  g.data_offset = (r.pos() + g.alignment - 1) / g.alignment * g.alignment;
  if (g.data_offset > size && !g.tensors.empty()) {
    throw Error(file + ": truncated: tensor data would start at byte " +
                std::to_string(g.data_offset) + " of " + std::to_string(size));
  }
  const uint64_t data_size = size > g.data_offset ? size - g.data_offset : 0;
  std::vector<const GgufTensor*> by_offset;
  for (GgufTensor& t : g.tensors) {
    if (t.offset > data_size || t.bytes > data_size - t.offset) {
      throw Error(file + ": tensor '" + t.name + "' data (" + std::to_string(t.bytes) +
                  " bytes at offset " + std::to_string(t.offset) +
                  ") runs past the end of the file");
    }
    t.offset += g.data_offset;
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensor* a, const GgufTensor* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i - 1]->offset + by_offset[i - 1]->bytes > by_offset[i]->offset) {
      throw Error(file + ": tensors '" + by_offset[i - 1]->name + "' and '" + by_offset[i]->name +
                  "' overlap");
    }
  }
  return g;
}

namespace {

const std::pair<const char*, const char*> kTopNames[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};
const std::pair<const char*, const char*> kLayerNames[] = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_q.bias", "self_attn.q_proj.bias"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_k.bias", "self_attn.k_proj.bias"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_v.bias", "self_attn.v_proj.bias"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"attn_output.bias", "self_attn.o_proj.bias"},
    {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
};

// "N" of "<prefix>N.<rest>" when N is a layer number; -1 otherwise.
int64_t layer_of(const std::string& name, const std::string& prefix, std::string& rest) {
  if (name.rfind(prefix, 0) != 0) return -1;
  const size_t dot = name.find('.', prefix.size());
  if (dot == std::string::npos || dot == prefix.size() || dot - prefix.size() > 6) return -1;
  const std::string n = name.substr(prefix.size(), dot - prefix.size());
  if (n.find_first_not_of("0123456789") != std::string::npos) return -1;
  rest = name.substr(dot + 1);
  return std::stoll(n);
}

}  // namespace

std::string hf_tensor_name(const std::string& gguf_name) {
  for (const auto& [g, h] : kTopNames) {
    if (gguf_name == g) return h;
  }
  std::string rest;
  const int64_t layer = layer_of(gguf_name, "blk.", rest);
  for (const auto& [g, h] : kLayerNames) {
    if (layer >= 0 && rest == g) return "model.layers." + std::to_string(layer) + "." + h;
  }
  return "";
}

std::string gguf_tensor_name(const std::string& hf_name) {
  for (const auto& [g, h] : kTopNames) {
    if (hf_name == h) return g;
  }
  std::string rest;
  const int64_t layer = layer_of(hf_name, "model.layers.", rest);
  for (const auto& [g, h] : kLayerNames) {
    if (layer >= 0 && rest == h) return "blk." + std::to_string(layer) + "." + g;
  }
  return "";
}

bool rope_permuted(const std::string& gguf_name) {
  std::string rest;
  return layer_of(gguf_name, "blk.", rest) >= 0 &&
         (rest.rfind("attn_q.", 0) == 0 || rest.rfind("attn_k.", 0) == 0);
}

std::vector<std::byte> permute_rope_rows(const std::byte* rows, int64_t n_rows, size_t row_bytes,
                                         int64_t heads, bool to_hf, const std::string& what) {
  if (heads <= 0 || n_rows % (2 * heads) != 0) {
    throw Error(what + " has " + std::to_string(n_rows) + " rows, not whole heads of " +
                std::to_string(heads));
  }
  const int64_t hd = n_rows / heads;
  std::vector<std::byte> out(static_cast<size_t>(n_rows) * row_bytes);
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t a = 0; a < hd / 2; ++a) {
      for (int64_t b = 0; b < 2; ++b) {
        const int64_t file = h * hd + 2 * a + b, hf = h * hd + b * (hd / 2) + a;
        const int64_t src = to_hf ? file : hf, dst = to_hf ? hf : file;
        std::memcpy(out.data() + dst * row_bytes, rows + src * row_bytes, row_bytes);
      }
    }
  }
  return out;
}

bool gguf_has(const GgufFile& g, const std::string& key) {
  return g.metadata.contains(key);
}

const Json& gguf_value(const GgufFile& g, const std::string& key, const std::string& file) {
  auto it = g.metadata.find(key);
  if (it == g.metadata.end()) throw Error(file + ": missing metadata key '" + key + "'");
  return *it;
}

}  // namespace bringup
