// The CPU allocator and the per-device allocator registry.
#include "engine/core/allocator.h"

#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>

#include "engine/core/error.h"

namespace hpt {

namespace {

class CpuAllocator final : public Allocator {
public:
    void* allocate(size_t nbytes) override {
        if (nbytes == 0) return nullptr;
        // Round up so that aligned_alloc's size rule holds and vector tails can over-read safely.
        const size_t rounded = (nbytes + 63) / 64 * 64;
        void* p = std::aligned_alloc(64, rounded);
        if (!p) {
            throw OutOfMemory(str("out of host memory: failed to allocate ", nbytes, " bytes (",
                                  in_use_.load() >> 20, " MiB in use by hpt tensors)"));
        }
        const int64_t now = in_use_ += int64_t(nbytes);
        int64_t peak = peak_.load();
        while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
        }
        ++allocs_;
        return p;
    }
    void deallocate(void* p, size_t nbytes) override {
        if (!p) return;
        std::free(p);
        in_use_ -= int64_t(nbytes);
        ++frees_;
    }
    AllocatorStats stats() const override {
        AllocatorStats s;
        s.in_use = in_use_;
        s.peak = peak_;
        s.allocs = allocs_;
        s.frees = frees_;
        return s;
    }
    void reset_peak() override { peak_ = in_use_.load(); }
    Device device() const override { return Device::cpu(); }

private:
    std::atomic<int64_t> in_use_{0}, peak_{0}, allocs_{0}, frees_{0};
};

struct Registry {
    std::mutex mu;
    std::function<Allocator*(int)> factories[kNumDeviceTypes];
    std::map<int, std::unique_ptr<Allocator>> instances[kNumDeviceTypes];
};

Registry& registry() {
    static Registry* r = new Registry();  // never destroyed: storages may die during static teardown
    return *r;
}

}  // namespace

void register_allocator_factory(DeviceType t, std::function<Allocator*(int index)> factory) {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mu);
    r.factories[int(t)] = std::move(factory);
}

Allocator& allocator_for(Device d) {
    if (d.is_cpu()) {
        static CpuAllocator* cpu = new CpuAllocator();
        return *cpu;
    }
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mu);
    auto& inst = r.instances[int(d.type)];
    auto it = inst.find(d.index);
    if (it != inst.end()) return *it->second;
    HPT_CHECK(r.factories[int(d.type)], "device ", d.str(), " is not available: this build of hpt has no ",
              device_type_name(d.type), " backend");
    Allocator* a = r.factories[int(d.type)](d.index);  // throws for a missing device index
    inst[d.index].reset(a);
    return *a;
}

}  // namespace hpt
