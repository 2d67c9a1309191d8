// A block of device memory shared by all tensors that view it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "engine/core/allocator.h"
#include "engine/core/device.h"

namespace hpt {

class Storage {
public:
    // Allocates nbytes on the device through its allocator.
    Storage(size_t nbytes, Device device);
    // Wraps memory owned elsewhere; `release` is called when the storage dies (may be empty).
    Storage(void* ptr, size_t nbytes, Device device, std::function<void(void*)> release);
    ~Storage();
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;

    void* data() const { return ptr_; }
    size_t nbytes() const { return nbytes_; }
    Device device() const { return device_; }
    // Bumped by every in-place write; autograd compares it to detect changes to saved tensors.
    uint64_t version() const { return version_; }
    void bump_version() { ++version_; }

private:
    void* ptr_ = nullptr;
    size_t nbytes_ = 0;
    Device device_;
    Allocator* allocator_ = nullptr;
    std::function<void(void*)> release_;
    uint64_t version_ = 0;
};

}  // namespace hpt
