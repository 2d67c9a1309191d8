// The caching device allocator (one per device) and pinned host memory.
//
// cudaMalloc and cudaFree are slow and cudaFree synchronises the device, so freed blocks are kept
// and reused. Sizes are rounded to 512 bytes. Requests up to 1 MiB come from a small pool carved
// out of 2 MiB segments; larger ones from a large pool of segments rounded to 2 MiB. A request takes
// the best-fitting free block (the smallest that is large enough) and splits off the rest when the
// rest is worth keeping (>= 512 B in the small pool, > 1 MiB in the large one); freed neighbours
// within a segment merge again.
//
// Blocks belong to the stream that was current when they were allocated and are only reused for
// requests on that stream: the stream orders the new user after the old one, so reuse needs no
// synchronisation (see runtime.h for the rule about other streams).
//
// When cudaMalloc fails, every cached segment is returned to the driver and the call is retried
// once; a second failure throws hpt::OutOfMemory with the request and the device's memory state.
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include "engine/core/allocator.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/runtime.h"

namespace hpt::cuda {

namespace {

constexpr size_t kRound = 512;
constexpr size_t kSmallLimit = size_t(1) << 20;    // requests up to this use the small pool
constexpr size_t kSmallSegment = size_t(2) << 20;  // cudaMalloc size of small-pool segments
constexpr size_t kLargeRound = size_t(2) << 20;    // large segments are multiples of this
constexpr size_t kLargeSplitMin = size_t(1) << 20; // keep a large remainder only above this

struct Block {
    cudaStream_t stream;
    size_t size;
    char* ptr;
    bool small;
    bool in_use = false;
    size_t requested = 0;  // bytes the caller asked for (for the in_use statistic)
    Block* prev = nullptr;  // neighbours inside the same cudaMalloc segment
    Block* next = nullptr;
};

struct BlockLess {  // by stream, then size (best fit = lower_bound), then address
    bool operator()(const Block* a, const Block* b) const {
        if (a->stream != b->stream) return std::less<cudaStream_t>()(a->stream, b->stream);
        if (a->size != b->size) return a->size < b->size;
        return std::less<char*>()(a->ptr, b->ptr);
    }
};

std::string bytes_text(double b) {
    const char* unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int u = 0;
    while (b >= 1024.0 && u < 6) b /= 1024.0, ++u;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f %s", b, unit[u]);
    return buf;
}

class CachingAllocator final : public Allocator {
public:
    explicit CachingAllocator(int device) : device_(device) {}

    void* allocate(size_t nbytes) override {
        if (nbytes == 0) return nullptr;
        HPT_CHECK(nbytes <= (size_t(1) << 62), "CUDA allocation of ", nbytes, " bytes on cuda:", device_,
                  " is beyond any device");
        const size_t size = (nbytes + kRound - 1) / kRound * kRound;
        DeviceGuard g(device_);
        cudaStream_t stream = current_stream(device_);
        std::lock_guard<std::mutex> lock(mu_);
        const bool small = size <= kSmallLimit;
        auto& pool = small ? small_ : large_;
        Block* b = take_best_fit(pool, stream, size);
        if (!b) b = new_segment(stream, small ? kSmallSegment : round_up(size, kLargeRound), small, nbytes);
        split(b, size, pool);
        b->in_use = true;
        b->requested = nbytes;
        active_[b->ptr] = b;
        stats_.in_use += int64_t(nbytes);
        stats_.cached -= int64_t(b->size);
        stats_.peak = std::max(stats_.peak, stats_.in_use);
        ++stats_.allocs;
        return b->ptr;
    }

    void deallocate(void* p, size_t) override {
        if (!p) return;
        std::lock_guard<std::mutex> lock(mu_);
        auto it = active_.find(p);
        if (it == active_.end()) {
            std::fprintf(stderr, "hpt: warning: cuda:%d allocator asked to free %p, which it did not allocate\n",
                         device_, p);
            return;
        }
        Block* b = it->second;
        active_.erase(it);
        stats_.in_use -= int64_t(b->requested);
        stats_.cached += int64_t(b->size);
        ++stats_.frees;
        b->in_use = false;
        b->requested = 0;
        auto& pool = b->small ? small_ : large_;
        // Two statements: merging into prev deletes b, so b->next must be read before (C++17
        // leaves the order of a call's arguments unspecified).
        Block* const next = b->next;
        b = merge(b, b->prev, pool);
        b = merge(b, next, pool);
        pool.insert(b);
    }

    AllocatorStats stats() const override {
        std::lock_guard<std::mutex> lock(mu_);
        return stats_;
    }

    CudaMemoryStats full_stats() const {
        std::lock_guard<std::mutex> lock(mu_);
        CudaMemoryStats s;
        s.base = stats_;
        s.reserved = reserved_;
        s.device_mallocs = mallocs_;
        s.device_frees = frees_;
        s.oom_retries = oom_retries_;
        return s;
    }

    void reset_peak() override {
        std::lock_guard<std::mutex> lock(mu_);
        stats_.peak = stats_.in_use;
    }

    void empty_cache() override {
        DeviceGuard g(device_);
        std::lock_guard<std::mutex> lock(mu_);
        release_cached();
    }

    Device device() const override { return Device::cuda(device_); }

private:
    static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

    Block* take_best_fit(std::set<Block*, BlockLess>& pool, cudaStream_t stream, size_t size) {
        Block key{stream, size, nullptr, false};
        auto it = pool.lower_bound(&key);
        if (it == pool.end() || (*it)->stream != stream) return nullptr;
        Block* b = *it;
        pool.erase(it);
        return b;
    }

    // Splits the tail of `b` beyond `size` into a free block when it is worth keeping.
    void split(Block* b, size_t size, std::set<Block*, BlockLess>& pool) {
        const size_t rest = b->size - size;
        if (rest < (b->small ? kRound : kLargeSplitMin + 1)) return;
        Block* r = new Block{b->stream, rest, b->ptr + size, b->small};
        r->prev = b;
        r->next = b->next;
        if (b->next) b->next->prev = r;
        b->next = r;
        b->size = size;
        pool.insert(r);
    }

    // Merges the free neighbour `n` (prev or next of b) into one block; returns the survivor.
    Block* merge(Block* b, Block* n, std::set<Block*, BlockLess>& pool) {
        if (!n || n->in_use) return b;
        pool.erase(n);
        Block* first = n == b->prev ? n : b;
        Block* second = first == n ? b : n;
        first->size += second->size;
        first->next = second->next;
        if (second->next) second->next->prev = first;
        delete second;
        return first;
    }

    Block* new_segment(cudaStream_t stream, size_t bytes, bool small, size_t requested) {
        void* p = nullptr;
        cudaError_t e = cudaMalloc(&p, bytes);
        if (e == cudaErrorMemoryAllocation) {
            cudaGetLastError();
            release_cached();
            e = cudaMalloc(&p, bytes);
            if (e == cudaSuccess) ++oom_retries_;
        }
        if (e == cudaErrorMemoryAllocation) {
            cudaGetLastError();
            size_t free_b = 0, total_b = 0;
            cudaMemGetInfo(&free_b, &total_b);
            cudaGetLastError();
            throw OutOfMemory(str("CUDA out of memory on cuda:", device_, ": tried to allocate ",
                                  bytes_text(double(requested)), " (", requested, " bytes); hpt tensors hold ",
                                  bytes_text(double(stats_.in_use)), " and hpt caches ",
                                  bytes_text(double(stats_.cached)), " more (cache already emptied and retried); ",
                                  "the device has ", bytes_text(double(free_b)), " free of ",
                                  bytes_text(double(total_b)), " (cudaMemGetInfo)"));
        }
        HPT_CUDA_CHECK(e);
        ++mallocs_;
        reserved_ += int64_t(bytes);
        stats_.cached += int64_t(bytes);
        return new Block{stream, bytes, static_cast<char*>(p), small};
    }

    // Frees every free block that is a whole segment. The caller holds the lock.
    void release_cached() {
        for (auto* pool : {&small_, &large_}) {
            for (auto it = pool->begin(); it != pool->end();) {
                Block* b = *it;
                if (b->prev || b->next) {
                    ++it;
                    continue;
                }
                // cudaFree waits for the device, so kernels still reading the block finish first.
                HPT_CUDA_CHECK_LOG(cudaFree(b->ptr));
                ++frees_;
                reserved_ -= int64_t(b->size);
                stats_.cached -= int64_t(b->size);
                delete b;
                it = pool->erase(it);
            }
        }
    }

    const int device_;
    mutable std::mutex mu_;
    std::set<Block*, BlockLess> small_, large_;  // free blocks
    std::unordered_map<void*, Block*> active_;   // blocks in use, by address
    AllocatorStats stats_;
    int64_t reserved_ = 0, mallocs_ = 0, frees_ = 0, oom_retries_ = 0;
};

CachingAllocator& allocator_of(int device) {
    const int d = device < 0 ? current_device() : device;
    return static_cast<CachingAllocator&>(allocator_for(Device::cuda(d)));
}

// Installed at load time; makes no CUDA call until a CUDA device is first used.
[[maybe_unused]] const bool g_registered = [] {
    register_allocator_factory(DeviceType::cuda, [](int index) -> Allocator* {
        check_device_index(index);
        return new CachingAllocator(index);
    });
    return true;
}();

}  // namespace

CudaMemoryStats memory_stats(int device) { return allocator_of(device).full_stats(); }

void empty_cache(int device) { allocator_of(device).empty_cache(); }

// ---------------------------------------------------------------- pinned host memory

Tensor pinned_empty(const Shape& shape, DType dtype) {
    for (int64_t v : shape) HPT_CHECK(v >= 0, "pinned_empty(): negative size in shape ", shape_str(shape));
    const size_t nbytes = size_t(shape_numel(shape)) * dtype_size(dtype);
    void* p = nullptr;
    if (nbytes > 0) HPT_CUDA_CHECK(cudaHostAlloc(&p, nbytes, cudaHostAllocDefault));
    auto impl = std::make_shared<TensorImpl>();
    // A copy from the buffer may still be in flight when the tensor dies: wait for the device
    // before handing the pages back (pinned tensors are long-lived staging buffers; this is rare).
    impl->storage = std::make_shared<Storage>(p, nbytes, Device::cpu(), [](void* q) {
        if (!q) return;
        HPT_CUDA_CHECK_LOG(cudaDeviceSynchronize());
        HPT_CUDA_CHECK_LOG(cudaFreeHost(q));
    });
    impl->shape = shape;
    impl->strides = contiguous_strides(shape);
    impl->dtype = dtype;
    return Tensor(impl);
}

bool is_pinned(const void* p) {
    if (!p) return false;
    cudaPointerAttributes a{};
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    return a.type == cudaMemoryTypeHost;
}

}  // namespace hpt::cuda
