// A device allocation. Model and runtime code hold it and pass it to ops (inside a Tensor or a KV
// view) but never read it; only the backend that made it knows what `data` points at. It lives
// in core so that a Tensor can be backed by one.
#pragma once

#include <cstddef>
#include <memory>

namespace bringup {

class DeviceMemory {
 public:
  struct Storage {
    virtual ~Storage() = default;
  };
  DeviceMemory() = default;
  DeviceMemory(std::unique_ptr<Storage> s, void* data, size_t bytes)
      : storage_(std::move(s)), data_(data), bytes_(bytes) {}
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  std::unique_ptr<Storage> storage_;
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace bringup
