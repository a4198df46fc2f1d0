#include "io/npy.h"

#include <cstring>
#include <fstream>

#include "bringup/error.h"

namespace bringup {

NpyArray read_npy(const std::filesystem::path& file, int64_t max_elements) {
  const std::string name = file.string();
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(name + ": cannot open");
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0) {
    throw Error(name + ": not a .npy file");
  }
  uint32_t header_len = 0;
  if (magic[6] == 1) {
    unsigned char b[2];
    in.read(reinterpret_cast<char*>(b), 2);
    header_len = b[0] | (b[1] << 8);
  } else {
    unsigned char b[4];
    in.read(reinterpret_cast<char*>(b), 4);
    header_len = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
  }
  if (!in || header_len > (1u << 20)) throw Error(name + ": malformed .npy header");
  std::string header(header_len, '\0');
  if (!in.read(header.data(), header_len)) throw Error(name + ": truncated .npy header");
  if (header.find("'descr': '<f4'") == std::string::npos) {
    throw Error(name + ": expected float32 ('<f4') data");
  }
  if (header.find("'fortran_order': False") == std::string::npos) {
    throw Error(name + ": expected C-order data");
  }
  const size_t open = header.find("'shape': (");
  const size_t close = header.find(')', open);
  if (open == std::string::npos || close == std::string::npos) throw Error(name + ": no shape");
  NpyArray a;
  int64_t n = 1;
  std::string dims = header.substr(open + 10, close - open - 10);
  for (size_t p = 0; p < dims.size();) {
    while (p < dims.size() && (dims[p] == ' ' || dims[p] == ',')) ++p;
    if (p >= dims.size()) break;
    size_t q = p;
    while (q < dims.size() && std::isdigit(static_cast<unsigned char>(dims[q]))) ++q;
    if (q == p || q - p > 12) throw Error(name + ": malformed shape");
    const int64_t d = std::stoll(dims.substr(p, q - p));
    a.shape.push_back(d);
    if (d > 0 && n > max_elements / d) throw Error(name + ": array too large");
    n *= d;
    p = q;
  }
  if (n > max_elements) throw Error(name + ": array too large");
  a.data.resize(static_cast<size_t>(n));
  if (!in.read(reinterpret_cast<char*>(a.data.data()), static_cast<std::streamsize>(n * 4))) {
    throw Error(name + ": truncated data (" + std::to_string(n) + " floats expected)");
  }
  return a;
}

void write_npy(const std::filesystem::path& file, const std::vector<int64_t>& shape,
               const float* data) {
  std::string dims;
  int64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    dims += (i ? ", " : "") + std::to_string(shape[i]);
    n *= shape[i];
  }
  if (shape.size() == 1) dims += ",";  // numpy writes (5,)
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64) header += ' ';
  header += '\n';
  std::ofstream out(file, std::ios::binary);
  if (!out) throw Error(file.string() + ": cannot create");
  out.write("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  out.put(static_cast<char>(len & 0xff));
  out.put(static_cast<char>(len >> 8));
  out << header;
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n * 4));
  if (!out) throw Error(file.string() + ": write failed");
}

}  // namespace bringup
