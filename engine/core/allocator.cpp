// The CPU allocator and the per-device allocator registry.
#include "engine/core/allocator.h"

#include <cstdint>
#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#include "engine/core/error.h"

namespace hpt {

namespace {

// Large blocks are cached instead of going back to the system: glibc serves them with mmap and
// returns them with munmap, so every training step would page-fault its activations in again
// (bench_step, ResNet-18 small stem, batch 64, 1 thread: 1,217,692 minor faults and 4.3 s of
// system time per run without the cache, 343,428 and 1.1 s with it).
// Cached blocks keep their pages. Sizes are rounded up to classes of 1/8 of a power of two (at most
// 12.5% slack), so a freed block serves any later request of its class; the cache is capped
// (HPT_CPU_CACHE_MB, default a quarter of physical memory) and emptied by empty_cache().
// Blocks of 4 MiB and more are 2 MiB-aligned and advised as transparent huge pages (Linux's
// default THP mode, "madvise", gives none otherwise): activations of tens of MB then cost one TLB
// entry and one fault per 2 MiB instead of per 4 KiB. bench_step, ResNet-18 small stem, batch 256,
// 2 threads, HPT_PROFILE, three runs each way: relu 4.5-6.2 s -> 2.3-2.5 s, batchnorm2d 5.6-6.5 s
// -> 4.6-5.0 s, all kernels 75-85 s -> 68-69 s per run, system time halved; the median step stayed
// within this VM's run-to-run noise. HPT_CPU_HUGE_PAGES=0 turns it off.
class CpuAllocator final : public Allocator {
public:
    static constexpr size_t kCacheFrom = size_t(256) << 10;

    CpuAllocator() {
        const char* h = std::getenv("HPT_CPU_HUGE_PAGES");
        huge_ = !(h && std::string(h) == "0");
        const char* e = std::getenv("HPT_CPU_CACHE_MB");
        if (e && *e) {
            cap_ = int64_t(std::atoll(e)) << 20;
        } else {
            const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
            cap_ = pages > 0 && page > 0 ? int64_t(pages) * page / 4 : int64_t(1) << 30;
        }
    }

    static size_t block_size(size_t nbytes) {
        const size_t rounded = (nbytes + 63) / 64 * 64;  // aligned_alloc's size rule; tails may over-read
        if (rounded < kCacheFrom) return rounded;
        size_t p = size_t(1) << (63 - __builtin_clzll(rounded));
        const size_t step = p / 8;
        return (rounded + step - 1) / step * step;
    }

    void* allocate(size_t nbytes) override {
        if (nbytes == 0) return nullptr;
        const size_t size = block_size(nbytes);
        void* p = size >= kCacheFrom ? take_cached(size) : nullptr;
        if (!p) p = fresh(size);
        if (!p && cached_.load() > 0) {  // memory held in the cache may be what is missing
            empty_cache();
            p = fresh(size);
        }
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
        in_use_ -= int64_t(nbytes);
        ++frees_;
        const size_t size = block_size(nbytes);
        if (size >= kCacheFrom) {
            std::lock_guard<std::mutex> lock(mu_);
            if (cached_.load() + int64_t(size) <= cap_) {
                free_[size].push_back(p);
                cached_ += int64_t(size);
                return;
            }
        }
        std::free(p);
    }
    AllocatorStats stats() const override {
        AllocatorStats s;
        s.in_use = in_use_;
        s.peak = peak_;
        s.cached = cached_;
        s.allocs = allocs_;
        s.frees = frees_;
        return s;
    }
    void reset_peak() override { peak_ = in_use_.load(); }
    void empty_cache() override {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto& [size, blocks] : free_)
            for (void* b : blocks) std::free(b);
        free_.clear();
        cached_ = 0;
    }
    Device device() const override { return Device::cpu(); }

private:
    void* fresh(size_t size) const {
        if (!huge_ || size < kHugeFrom) return std::aligned_alloc(64, size);
        void* p = nullptr;
        if (::posix_memalign(&p, kHuge, size) != 0) return nullptr;
        ::madvise(p, size, MADV_HUGEPAGE);  // advice only: where THP is off, small pages as before
        return p;
    }
    static constexpr size_t kHuge = size_t(2) << 20, kHugeFrom = size_t(4) << 20;

    void* take_cached(size_t size) {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = free_.find(size);
        if (it == free_.end() || it->second.empty()) return nullptr;
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= int64_t(size);
        return p;
    }

    std::atomic<int64_t> in_use_{0}, peak_{0}, allocs_{0}, frees_{0}, cached_{0};
    int64_t cap_ = 0;
    bool huge_ = true;
    std::mutex mu_;
    std::unordered_map<size_t, std::vector<void*>> free_;
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
