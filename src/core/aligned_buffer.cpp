#include "core/aligned_buffer.h"

#include <sys/mman.h>

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

void AlignedBuffer::release() {
  if (!data_) return;
  if (mapped_) {
    munmap(data_, bytes_);
  } else {
    std::free(data_);
  }
  data_ = nullptr;
  bytes_ = 0;
}

}  // namespace bringup
