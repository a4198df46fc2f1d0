#include "models/weight_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "bringup/error.h"
#include "core/mapped_file.h"
#include "io/sha256.h"

namespace bringup {

namespace {

namespace fs = std::filesystem;

constexpr char kMagic[8] = {'B', 'R', 'U', 'P', 'W', 'C', '0', '1'};
constexpr size_t kKeyBytes = 64;  // hex SHA-256
constexpr size_t kFixedHeader = sizeof(kMagic) + 8 + 8 + kKeyBytes + 8;
constexpr size_t kChecksumBytes = 32;
constexpr uint64_t kAlign = 4096;
constexpr size_t kReadChunk = size_t{4} << 20;  // bytes one thread reads at a time (its buffer)

// The header as written: appended little-endian words (x86-64 and AArch64 are little-endian).
struct HeaderWriter {
  std::vector<std::byte> bytes;
  void raw(const void* p, size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    bytes.insert(bytes.end(), b, b + n);
  }
  void u64(uint64_t v) { raw(&v, 8); }
};

// The header as read: every read checked against its end.
struct HeaderReader {
  const std::byte* p;
  const std::byte* end;
  uint64_t u64() {
    if (end - p < 8) throw Error("header ends early");
    uint64_t v;
    std::memcpy(&v, p, 8);
    p += 8;
    return v;
  }
};

struct Entry {
  uint64_t kind = 0;  // 0 matrix, 1 vector
  std::vector<int64_t> layout;
  std::vector<std::pair<uint64_t, uint64_t>> buffers;  // offset, bytes
};

// A file descriptor closed on scope exit.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

bool pread_all(int fd, std::byte* dst, size_t bytes, uint64_t offset) {
  while (bytes > 0) {
    const ssize_t n = ::pread(fd, dst, bytes, static_cast<off_t>(offset));
    if (n <= 0) return false;
    dst += n;
    bytes -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

bool write_all(int fd, const std::byte* src, size_t bytes) {
  while (bytes > 0) {
    const ssize_t n = ::write(fd, src, bytes);
    if (n <= 0) return false;
    src += n;
    bytes -= static_cast<size_t>(n);
  }
  return true;
}

uint64_t aligned(uint64_t v) {
  return (v + kAlign - 1) / kAlign * kAlign;
}

// Reads the whole file in chunks of kReadChunk, which `threads` threads take in turn, each into
// its own buffer (reading from the page cache is a copy, which scales with cores).
bool read_all_chunks(int fd, uint64_t size, int threads) {
  std::atomic<uint64_t> next{0};
  std::atomic<bool> ok{true};
  auto work = [&] {
    std::vector<std::byte> own(kReadChunk);
    for (uint64_t at; (at = next.fetch_add(kReadChunk)) < size && ok;) {
      if (!pread_all(fd, own.data(), std::min<uint64_t>(kReadChunk, size - at), at)) ok = false;
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  return ok;
}

// The rows and columns the slot's tensors imply: matrices stack along rows; a vector is its
// tensors' values one after another (one column).
std::pair<int64_t, int64_t> slot_shape(const Checkpoint& ck, const WeightSlot& slot) {
  int64_t rows = 0, cols = 1;
  for (const std::string& n : slot.names) {
    const TensorView& v = ck.tensor(n);
    if (slot.vector || v.shape.size() != 2) {
      rows += v.numel();
    } else {
      rows += v.shape[0];
      cols = v.shape[1];
    }
  }
  return {rows, cols};
}

// `map` is the cache file; unmapped when the last weight viewing it goes.
std::string parse_and_fill(const std::shared_ptr<const MappedFile>& map, bool keep_mapped,
                           const std::vector<Entry>& entries, const Checkpoint& ck,
                           const std::vector<WeightSlot>& slots, Device& dev) {
  if (entries.size() != slots.size()) {
    return "holds " + std::to_string(entries.size()) + " weights, not the " +
           std::to_string(slots.size()) + " this model has";
  }
  const uint64_t file_bytes = map->size();
  std::vector<Weight> matrices(slots.size());
  std::vector<Tensor> vectors(slots.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    const Entry& e = entries[i];
    const WeightSlot& slot = slots[i];
    const std::string where = "weight " + std::to_string(i) + " (" + slot.names.front() + ")";
    std::vector<std::span<const std::byte>> buffers;
    for (const auto& [offset, bytes] : e.buffers) {
      if (offset > file_bytes || bytes > file_bytes - offset) return where + " lies past the end";
      buffers.emplace_back(map->data() + offset, bytes);
    }
    const auto [rows, cols] = slot_shape(ck, slot);
    if (slot.matrix) {
      if (e.kind != 0) return where + " is not a matrix";
      try {
        matrices[i] = dev.adopt_weight(e.layout, buffers, keep_mapped ? map : nullptr);
      } catch (const Error& err) {
        return where + ": " + err.what();
      }
      // A copied weight no longer needs its pages of the file: drop them now, or the mapping
      // keeps a second copy of every weight resident until the load ends (peak memory 2x plan).
      if (!keep_mapped) {
        for (const auto& [offset, bytes] : e.buffers) map->release(offset, bytes);
      }
      if (matrices[i].rows != rows || matrices[i].cols != cols) {
        return where + " is " + std::to_string(matrices[i].rows) + "x" +
               std::to_string(matrices[i].cols) + ", not " + std::to_string(rows) + "x" +
               std::to_string(cols);
      }
    } else {
      if (e.kind != 1 || e.layout.size() != 1 || e.buffers.size() != 1) {
        return where + " is not a vector";
      }
      const int64_t n = e.layout[0];
      if (n != rows || e.buffers[0].second != static_cast<uint64_t>(n) * sizeof(float)) {
        return where + " has " + std::to_string(n) + " values, not " + std::to_string(rows);
      }
      std::vector<float> host(static_cast<size_t>(n));
      std::memcpy(host.data(), buffers[0].data(), buffers[0].size());
      vectors[i] = Tensor::on(dev.allocate(host.size() * sizeof(float)), slot.names.front());
      vectors[i].resize({n});
      dev.write(vectors[i], host);
    }
  }
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].matrix) {
      *slots[i].matrix = std::move(matrices[i]);
    } else {
      *slots[i].vector = std::move(vectors[i]);
    }
  }
  return "";
}

}  // namespace

std::string_view weight_cache_state_name(WeightCacheReport::State s) {
  switch (s) {
    case WeightCacheReport::State::kOff:
      return "off";
    case WeightCacheReport::State::kLoaded:
      return "loaded";
    case WeightCacheReport::State::kWritten:
      return "written";
    case WeightCacheReport::State::kNotWritten:
      return "not written";
  }
  return "?";
}

fs::path weight_cache_file(const fs::path& dir, const Checkpoint& ck, Precision precision) {
  return dir / (ck.name() + "." + std::string(precision_name(precision)) + ".weights");
}

std::string weight_cache_key(const Checkpoint& ck, Precision precision, const std::string& layout) {
  Sha256 h;
  auto text = [&](std::string_view s) {
    const uint64_t n = s.size();
    h.update(&n, 8);
    h.update(s);
  };
  auto number = [&](int64_t v) { h.update(&v, 8); };
  text("bringup packed-weight cache");
  text(layout);
  text(precision_name(precision));
  std::vector<fs::path> files = ck.files();
  if (fs::is_directory(ck.dir()) && fs::exists(ck.dir() / "config.json")) {
    files.push_back(ck.dir() / "config.json");
  }
  for (const fs::path& f : files) {
    struct stat st {};
    if (::stat(f.c_str(), &st) != 0) throw Error(f.string() + ": cannot stat");
    text(f.filename().string());
    number(st.st_size);
    number(st.st_mtim.tv_sec);
    number(st.st_mtim.tv_nsec);
  }
  for (const auto& [name, v] : ck.tensors()) {
    text(name);
    text(storage_dtype_name(v.dtype));
    for (int64_t d : v.shape) number(d);
    number(static_cast<int64_t>(v.bytes));
    const size_t sample = std::min<size_t>(v.bytes, 64);
    h.update(v.data, sample);
    h.update(v.data + v.bytes - sample, sample);
  }
  return to_hex(h.digest());
}

std::string read_weight_cache(const fs::path& file, const std::string& key, const Checkpoint& ck,
                              const std::vector<WeightSlot>& slots, Device& dev, bool keep_mapped) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return kNoCacheFile;
  std::shared_ptr<const MappedFile> map;
  try {
    map = std::make_shared<const MappedFile>(file);
  } catch (const Error& e) {
    return e.what();
  }
  const uint64_t size = map->size();
  if (size < kFixedHeader + kChecksumBytes) return "truncated (" + std::to_string(size) + " bytes)";
  const std::byte* header = map->data();
  if (std::memcmp(header, kMagic, sizeof(kMagic)) != 0) return "not a bringup weight cache";
  HeaderReader r{header + sizeof(kMagic), header + kFixedHeader};
  const uint64_t header_bytes = r.u64(), file_bytes = r.u64();
  if (header_bytes < kFixedHeader + kChecksumBytes || header_bytes > size) {
    return "truncated or corrupt header";
  }
  Sha256 sum;
  sum.update(header, header_bytes - kChecksumBytes);
  const std::array<uint8_t, 32> digest = sum.digest();
  if (std::memcmp(digest.data(), header + header_bytes - kChecksumBytes, 32) != 0) {
    return "corrupt header (checksum mismatch)";
  }
  if (file_bytes != size) {
    return "truncated (" + std::to_string(size) + " of " + std::to_string(file_bytes) + " bytes)";
  }
  const std::string stored(reinterpret_cast<const char*>(header) + sizeof(kMagic) + 16, kKeyBytes);
  if (stored != key) return "stale (the checkpoint, precision policy or kernel layout changed)";
  std::vector<Entry> entries;
  try {
    HeaderReader h{header + kFixedHeader - 8, header + header_bytes - kChecksumBytes};
    const uint64_t n = h.u64();
    if (n > header_bytes) throw Error("too many entries");
    for (uint64_t i = 0; i < n; ++i) {
      Entry e;
      e.kind = h.u64();
      const uint64_t layout = h.u64();
      if (layout > header_bytes / 8) throw Error("layout too long");
      for (uint64_t j = 0; j < layout; ++j) e.layout.push_back(static_cast<int64_t>(h.u64()));
      const uint64_t buffers = h.u64();
      if (buffers > header_bytes / 16) throw Error("too many buffers");
      for (uint64_t j = 0; j < buffers; ++j) {
        const uint64_t offset = h.u64();
        e.buffers.emplace_back(offset, h.u64());
      }
      entries.push_back(std::move(e));
    }
  } catch (const Error& e) {
    return std::string("corrupt header (") + e.what() + ")";
  }
  // Copied weights fault the pages in as the copy goes, on every thread.
  if (keep_mapped) map->populate();
  return parse_and_fill(map, keep_mapped, entries, ck, slots, dev);
}

std::string write_weight_cache(const fs::path& file, const std::string& key,
                               const std::vector<WeightSlot>& slots, Device& dev) {
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  if (ec) return "cannot create " + file.parent_path().string() + ": " + ec.message();
  // Header: every entry's layout and buffer places, the buffers laid out after it.
  std::vector<WeightImage> images(slots.size());
  std::vector<std::vector<float>> vectors(slots.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i].matrix) {
      images[i] = dev.weight_image(*slots[i].matrix);
    } else {
      const Tensor& t = *slots[i].vector;
      vectors[i].resize(static_cast<size_t>(t.numel()));
      dev.read(t, vectors[i]);
      images[i].layout = {t.numel()};
      images[i].buffers.emplace_back(reinterpret_cast<const std::byte*>(vectors[i].data()),
                                     vectors[i].size() * sizeof(float));
    }
  }
  size_t header_bytes = kFixedHeader + kChecksumBytes;
  for (const WeightImage& im : images) {
    header_bytes += 8 * (3 + im.layout.size()) + 16 * im.buffers.size();
  }
  uint64_t offset = aligned(header_bytes);
  HeaderWriter body;
  for (size_t i = 0; i < slots.size(); ++i) {
    body.u64(slots[i].matrix ? 0 : 1);
    body.u64(images[i].layout.size());
    for (int64_t v : images[i].layout) body.u64(static_cast<uint64_t>(v));
    body.u64(images[i].buffers.size());
    for (const auto& b : images[i].buffers) {
      body.u64(offset);
      body.u64(b.size());
      offset = aligned(offset + b.size());
    }
  }
  const uint64_t file_bytes = offset;
  struct statvfs vfs {};
  if (::statvfs(file.parent_path().c_str(), &vfs) == 0 &&
      static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize < file_bytes + (uint64_t{1} << 30)) {
    return "not enough free disk space in " + file.parent_path().string() + " (needs " +
           std::to_string(file_bytes >> 20) + " MiB and 1 GiB to spare)";
  }
  HeaderWriter h;
  h.raw(kMagic, sizeof(kMagic));
  h.u64(header_bytes);
  h.u64(file_bytes);
  h.raw(key.data(), kKeyBytes);
  h.u64(slots.size());
  h.raw(body.bytes.data(), body.bytes.size());
  Sha256 sum;
  sum.update(h.bytes.data(), h.bytes.size());
  const std::array<uint8_t, 32> digest = sum.digest();
  h.raw(digest.data(), digest.size());
  if (h.bytes.size() != header_bytes || key.size() != kKeyBytes) {
    throw Error("weight cache: header size mismatch (a bug)");
  }

  const fs::path tmp = file.string() + ".tmp-" + std::to_string(::getpid());
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.fd < 0) return "cannot write in " + file.parent_path().string();
  bool ok = write_all(fd.fd, h.bytes.data(), h.bytes.size());
  uint64_t at = h.bytes.size();
  const std::vector<std::byte> zeros(kAlign);
  for (const WeightImage& im : images) {
    for (const auto& b : im.buffers) {
      const uint64_t pad = aligned(at) - at;
      ok = ok && write_all(fd.fd, zeros.data(), pad) && write_all(fd.fd, b.data(), b.size());
      at += pad + b.size();
    }
  }
  ok = ok && write_all(fd.fd, zeros.data(), file_bytes - at);
  ok = (::close(std::exchange(fd.fd, -1)) == 0) && ok;
  if (!ok || ::rename(tmp.c_str(), file.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return "cannot write " + file.string() + ": " + std::strerror(errno);
  }
  return "";
}

double time_file_read(const fs::path& file, int threads) {
  Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) throw Error(file.string() + ": cannot open");
  const uint64_t size = fs::file_size(file);
  const auto t0 = std::chrono::steady_clock::now();
  if (!read_all_chunks(fd.fd, size, threads)) throw Error(file.string() + ": cannot read");
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace bringup
