// A 64-byte aligned heap buffer. Large buffers come from anonymous mmap, so pages that are
// never written (an unused tail of the KV cache) cost no resident memory.
//
// Pages::kHuge asks for 2 MiB transparent huge pages: right for weights, which are written
// whole once and streamed every token (fewer TLB misses), wrong for a buffer used only in part,
// where each touched byte would make 2 MiB resident.
//
// A buffer can also view memory it does not own (a mapped file, e.g. the packed-weight cache):
// it keeps the owner alive and never writes or frees the memory itself.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>

namespace bringup {

class AlignedBuffer {
 public:
  enum class Pages { kDefault, kHuge };

  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t bytes, Pages pages = Pages::kDefault);
  // `bytes` at `data` (64-byte aligned), valid while `owner` lives; read-only when the owner
  // mapped them so.
  static AlignedBuffer view(const void* data, size_t bytes, std::shared_ptr<const void> owner);
  AlignedBuffer(AlignedBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        bytes_(std::exchange(o.bytes_, 0)),
        mapped_(o.mapped_),
        owner_(std::move(o.owner_)) {}
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
      mapped_ = o.mapped_;
      owner_ = std::move(o.owner_);
    }
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { release(); }

  template <typename T>
  T* as() {
    return static_cast<T*>(data_);
  }
  template <typename T>
  const T* as() const {
    return static_cast<const T*>(data_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void release();
  void* data_ = nullptr;
  size_t bytes_ = 0;
  bool mapped_ = false;
  std::shared_ptr<const void> owner_;  // set: a view of the owner's memory
};

}  // namespace bringup
