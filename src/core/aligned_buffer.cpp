#include "core/aligned_buffer.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "bringup/error.h"

namespace bringup {

namespace {
constexpr size_t kMapThreshold = size_t{1} << 20;
}

AlignedBuffer::AlignedBuffer(size_t bytes, Pages pages) : bytes_(bytes) {
  if (bytes == 0) return;
  if (bytes >= kMapThreshold) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      throw Error("out of memory: cannot reserve " + std::to_string(bytes) + " bytes");
    }
    // Transparent huge pages are often enabled only on request (madvise mode).
    if (pages == Pages::kHuge) madvise(p, bytes, MADV_HUGEPAGE);
    data_ = p;
    mapped_ = true;
    return;
  }
  const size_t rounded = (bytes + 63) / 64 * 64;
  data_ = std::aligned_alloc(64, rounded);
  if (!data_) throw Error("out of memory: cannot allocate " + std::to_string(bytes) + " bytes");
  std::memset(data_, 0, rounded);
}

AlignedBuffer AlignedBuffer::view(const void* data, size_t bytes,
                                  std::shared_ptr<const void> owner) {
  if (reinterpret_cast<uintptr_t>(data) % 64 != 0) throw Error("buffer view: not 64-byte aligned");
  AlignedBuffer b;
  b.data_ = bytes ? const_cast<void*>(data) : nullptr;
  b.bytes_ = bytes;
  b.owner_ = std::move(owner);
  return b;
}

void AlignedBuffer::release() {
  if (owner_) {
    owner_.reset();
  } else if (!data_) {
    return;
  } else if (mapped_) {
    munmap(data_, bytes_);
  } else {
    std::free(data_);
  }
  data_ = nullptr;
  bytes_ = 0;
}

}  // namespace bringup
