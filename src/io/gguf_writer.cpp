#include "io/gguf_writer.h"

#include <cstring>
#include <fstream>

#include "bringup/error.h"
#include "io/gguf.h"

namespace bringup {

namespace {

template <typename T>
void put(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

void put_string(std::string& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out += s;
}

void encode(std::string& out, GgufWriter::Type t, const Json& v, const std::string& key) {
  using W = GgufWriter;
  auto bad = [&] {
    throw Error("GGUF metadata '" + key + "': value " +
                v.dump(-1, ' ', false, Json::error_handler_t::replace) + " does not fit its type");
  };
  // Unsigned types take any integer that is not negative (JSON keeps int64 values signed).
  const auto unsigned_up_to = [&](uint64_t max) {
    if (!v.is_number_integer() ||
        (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0) ||
        v.get<uint64_t>() > max) {
      bad();
    }
  };
  switch (t) {
    case W::kU8:
      unsigned_up_to(UINT8_MAX);
      put<uint8_t>(out, v.get<uint8_t>());
      return;
    case W::kI8:
      if (!v.is_number_integer()) bad();
      put<int8_t>(out, v.get<int8_t>());
      return;
    case W::kU16:
      unsigned_up_to(UINT16_MAX);
      put<uint16_t>(out, v.get<uint16_t>());
      return;
    case W::kI16:
      if (!v.is_number_integer()) bad();
      put<int16_t>(out, v.get<int16_t>());
      return;
    case W::kU32:
      unsigned_up_to(UINT32_MAX);
      put<uint32_t>(out, v.get<uint32_t>());
      return;
    case W::kI32:
      if (!v.is_number_integer()) bad();
      put<int32_t>(out, v.get<int32_t>());
      return;
    case W::kU64:
      unsigned_up_to(UINT64_MAX);
      put<uint64_t>(out, v.get<uint64_t>());
      return;
    case W::kI64:
      if (!v.is_number_integer()) bad();
      put<int64_t>(out, v.get<int64_t>());
      return;
    case W::kF32:
      if (!v.is_number()) bad();
      put<float>(out, v.get<float>());
      return;
    case W::kF64:
      if (!v.is_number()) bad();
      put<double>(out, v.get<double>());
      return;
    case W::kBool:
      if (!v.is_boolean()) bad();
      put<uint8_t>(out, v.get<bool>() ? 1 : 0);
      return;
    case W::kString:
      if (!v.is_string()) bad();
      put_string(out, v.get_ref<const std::string&>());
      return;
    case W::kArray:
      break;
  }
  bad();
}

}  // namespace

void GgufWriter::set(const std::string& key, Type type, const Json& value, Type element) {
  std::string enc;
  put<uint32_t>(enc, type);
  if (type == kArray) {
    if (!value.is_array() || element == kArray) {
      throw Error("GGUF metadata '" + key + "': expected an array of scalars");
    }
    put<uint32_t>(enc, element);
    put<uint64_t>(enc, value.size());
    for (const Json& v : value) encode(enc, element, v, key);
  } else {
    encode(enc, type, value, key);
  }
  for (auto& [k, v] : kv_) {
    if (k == key) {
      v = std::move(enc);
      return;
    }
  }
  kv_.emplace_back(key, std::move(enc));
}

void GgufWriter::add_tensor(const std::string& name, std::vector<int64_t> ne, StorageDType dtype,
                            std::vector<std::byte> bytes) {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  if (ne.empty() || ne[0] % storage_block_elems(dtype) != 0 ||
      storage_bytes(dtype, n) != bytes.size()) {
    throw Error("GGUF tensor '" + name + "': its bytes do not match its shape and type");
  }
  tensors_.push_back({name, std::move(ne), dtype, std::move(bytes)});
}

void GgufWriter::write(const std::filesystem::path& file, uint64_t alignment) const {
  std::string head = "GGUF";
  put<uint32_t>(head, 3);
  put<uint64_t>(head, tensors_.size());
  put<uint64_t>(head, kv_.size() + (alignment != 32 ? 1 : 0));
  for (const auto& [k, v] : kv_) {
    put_string(head, k);
    head += v;
  }
  if (alignment != 32) {
    put_string(head, "general.alignment");
    put<uint32_t>(head, kU32);
    put<uint32_t>(head, static_cast<uint32_t>(alignment));
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    put_string(head, t.name);
    put<uint32_t>(head, static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) put<uint64_t>(head, static_cast<uint64_t>(d));
    put<uint32_t>(head, ggml_type_id(t.dtype));
    put<uint64_t>(head, offset);
    offset += (t.bytes.size() + alignment - 1) / alignment * alignment;
  }
  head.resize((head.size() + alignment - 1) / alignment * alignment, '\0');
  std::ofstream out(file, std::ios::binary);
  if (!out) throw Error(file.string() + ": cannot write");
  out.write(head.data(), static_cast<std::streamsize>(head.size()));
  const std::string pad(alignment, '\0');
  for (const Tensor& t : tensors_) {
    out.write(reinterpret_cast<const char*>(t.bytes.data()),
              static_cast<std::streamsize>(t.bytes.size()));
    out.write(pad.data(),
              static_cast<std::streamsize>((alignment - t.bytes.size() % alignment) % alignment));
  }
  if (!out) throw Error(file.string() + ": write failed");
}

}  // namespace bringup
