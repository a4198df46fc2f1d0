#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <fstream>

#include "bringup/error.h"
#include "io/json_fields.h"

namespace bringup {

StorageDType parse_storage_dtype(const std::string& name, const std::string& context) {
  if (name == "F32") return StorageDType::kF32;
  if (name == "BF16") return StorageDType::kBF16;
  if (name == "F16") return StorageDType::kF16;
  throw Error(context + ": unsupported dtype '" + name + "' (expected F32, BF16 or F16)");
}

std::vector<SafetensorsEntry> parse_safetensors(const std::byte* data, size_t size,
                                                const std::string& file) {
  if (size < 8)
    throw Error(file + ": truncated safetensors file (" + std::to_string(size) +
                " bytes, no header length)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<uint8_t>(data[i]);
  if (header_len > kMaxSafetensorsHeader) {
    throw Error(file + ": safetensors header length " + std::to_string(header_len) +
                " exceeds the 100 MiB limit");
  }
  if (header_len > size - 8) {
    throw Error(file + ": truncated safetensors file (header of " + std::to_string(header_len) +
                " bytes, file has " + std::to_string(size - 8) + " after the length)");
  }
  const std::string header(reinterpret_cast<const char*>(data + 8), header_len);
  const Json j = parse_json(header, file + " (safetensors header)");
  if (!j.is_object()) throw Error(file + ": safetensors header is not a JSON object");
  const size_t data_start = 8 + header_len;
  const size_t data_size = size - data_start;

  std::vector<SafetensorsEntry> entries;
  for (const auto& [name, t] : j.items()) {
    if (name == "__metadata__") continue;
    const std::string where = file + ": tensor '" + name + "'";
    if (!t.is_object()) throw Error(where + " is not an object");
    const JsonFields f(t, where);
    SafetensorsEntry e;
    e.name = name;
    e.dtype = parse_storage_dtype(f.string("dtype"), where);
    const Json& shape = f.value("shape");
    if (!shape.is_array() || shape.size() > 8)
      f.fail("shape", "must be an array of at most 8 sizes");
    uint64_t numel = 1;
    for (const Json& d : shape) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0)) {
        f.fail("shape", "must hold non-negative integers");
      }
      const uint64_t v = d.get<uint64_t>();
      if (v > (uint64_t{1} << 40) || (v && numel > (uint64_t{1} << 62) / v)) {
        f.fail("shape", "is too large");
      }
      numel *= v;
      e.shape.push_back(static_cast<int64_t>(v));
    }
    const Json& offs = f.value("data_offsets");
    if (!offs.is_array() || offs.size() != 2 || !offs[0].is_number_unsigned() ||
        !offs[1].is_number_unsigned()) {
      f.fail("data_offsets", "must be [begin, end] with non-negative integers");
    }
    const uint64_t begin = offs[0].get<uint64_t>(), end = offs[1].get<uint64_t>();
    const std::string range =
        "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "]";
    if (begin > end) throw Error(where + ": " + range + " end before they begin");
    if (end > data_size) {
      throw Error(where + ": " + range + " point past the end of the " + std::to_string(data_size) +
                  "-byte data section (file truncated or offsets out of range)");
    }
    const uint64_t expect = numel * storage_dtype_size(e.dtype);
    if (end - begin != expect) {
      throw Error(where + ": holds " + std::to_string(end - begin) + " bytes but its shape and " +
                  std::string(storage_dtype_name(e.dtype)) + " need " + std::to_string(expect));
    }
    e.offset = data_start + begin;
    e.bytes = end - begin;
    entries.push_back(std::move(e));
  }
  std::vector<const SafetensorsEntry*> by_offset;
  for (const auto& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(),
            [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const auto* prev = by_offset[i - 1];
    if (prev->offset + prev->bytes > by_offset[i]->offset && by_offset[i]->bytes > 0) {
      throw Error(file + ": tensors '" + prev->name + "' and '" + by_offset[i]->name +
                  "' overlap in the data section");
    }
  }
  return entries;
}

void write_safetensors(const std::filesystem::path& path, const std::vector<SafetensorsSpec>& specs,
                       const SafetensorsFill& fill) {
  Json header = Json::object();
  std::vector<size_t> sizes;
  size_t offset = 0;
  for (const auto& s : specs) {
    size_t n = storage_dtype_size(s.dtype);
    for (int64_t d : s.shape) n *= static_cast<size_t>(d);
    header[s.name] = {{"dtype", std::string(storage_dtype_name(s.dtype))},
                      {"shape", s.shape},
                      {"data_offsets", {offset, offset + n}}};
    sizes.push_back(n);
    offset += n;
  }
  header["__metadata__"] = {{"format", "pt"}};
  std::string text = header.dump();
  while (text.size() % 8) text += ' ';  // data section 8-byte aligned, as the reference does
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error(path.string() + ": cannot create");
  uint64_t len = text.size();
  char len_bytes[8];
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<char>((len >> (8 * i)) & 0xff);
  out.write(len_bytes, 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  constexpr size_t kChunk = size_t{8} << 20;
  std::vector<std::byte> buf;
  for (size_t i = 0; i < specs.size(); ++i) {
    for (size_t first = 0; first < sizes[i]; first += kChunk) {
      const size_t n = std::min(kChunk, sizes[i] - first);
      buf.resize(n);
      fill(i, first, buf.data(), n);
      out.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(n));
    }
  }
  out.flush();
  if (!out) throw Error(path.string() + ": write failed (disk full?)");
}

}  // namespace bringup
