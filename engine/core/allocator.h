// Per-device memory allocators with usage statistics.
//
// Every Storage is obtained from the allocator of its device, so "bytes in use" and "peak" are
// exact for the engine's own tensors. The CPU allocator hands out 64-byte aligned blocks (one cache
// line, enough for AVX-512 loads). The CUDA backend registers its caching allocator at load time.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

#include "engine/core/device.h"

namespace hpt {

struct AllocatorStats {
    int64_t in_use = 0;   // bytes handed out and not yet returned
    int64_t peak = 0;     // max of in_use since the last reset_peak()
    int64_t cached = 0;   // bytes held by the allocator but free (caching allocators only)
    int64_t allocs = 0;   // number of allocate() calls
    int64_t frees = 0;
};

class Allocator {
public:
    virtual ~Allocator() = default;
    virtual void* allocate(size_t nbytes) = 0;
    virtual void deallocate(void* p, size_t nbytes) = 0;
    virtual AllocatorStats stats() const = 0;
    virtual void reset_peak() = 0;
    virtual void empty_cache() {}
    virtual Device device() const = 0;
};

// The allocator of a device. Throws if the device type is not built in or the index does not exist.
Allocator& allocator_for(Device d);

// Used by backends to install their allocator factory (called once per device index).
void register_allocator_factory(DeviceType t, std::function<Allocator*(int index)> factory);

}  // namespace hpt
