#include "engine/data/loader.h"

#include <cstdint>
#include <condition_variable>
#include <cstring>
#include <algorithm>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <tuple>

#include "engine/core/error.h"
#include "engine/core/random.h"

#ifdef HPT_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace hpt::data {

namespace {
// Tags the shuffling stream so that it never shares draws with augmentation or init.
constexpr uint64_t kShuffleStreamTag = 0x5348554600000000ull;  // "SHUF"
}  // namespace

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
    HPT_CHECK(n >= 0 && epoch >= 0, "epoch_permutation(", n, ", epoch ", epoch, ")");
    Generator g(seed, kShuffleStreamTag | uint64_t(epoch));
    return g.permutation(n);
}

std::vector<int64_t> shard(const std::vector<int64_t>& order, int rank, int world_size, bool drop_last) {
    HPT_CHECK(world_size >= 1 && rank >= 0 && rank < world_size, "shard: rank ", rank, " of ", world_size);
    const size_t n = order.size(), w = size_t(world_size);
    const size_t m = drop_last ? n / w * w : n;
    std::vector<int64_t> mine;
    mine.reserve(m / w + 1);
    for (size_t i = size_t(rank); i < m; i += w) mine.push_back(order[i]);
    return mine;
}

// ---------------------------------------------------------------- the CUDA staging area

#ifdef HPT_WITH_CUDA
namespace {

#define HPT_LOADER_CUDA(call)                                                                     \
    do {                                                                                          \
        const cudaError_t e_ = (call);                                                            \
        if (e_ != cudaSuccess) HPT_THROW("loader (cuda): ", #call, ": ", cudaGetErrorString(e_)); \
    } while (0)

// The path of a batch to the GPU. Its u8 images and sample indices are gathered into a pinned
// slot and copied on the loader's own stream (overlapping whatever the GPU computes); the
// device's current stream (hpt's compute stream) waits for that copy and runs the augmentation
// kernels, so the views are allocated, written and read in one stream's order: next() never
// waits for the GPU, and the stream-ordered allocator may hand a released batch's memory to the
// next batch safely. Two slots alternate; a slot is reused once the kernels that read it are done.
struct CudaStage {
    int device = 0;
    cudaStream_t copy_stream = nullptr;
    struct Slot {
        Tensor pinned_images, pinned_samples, pinned_params;  // pinned host memory
        Tensor images, samples, params;                       // device copies
        cudaEvent_t copied = nullptr, consumed = nullptr;
        bool used = false;
    } slots[2];
    int next_slot = 0;
    Tensor scratch, params, plain_params, tile_sums;  // used only by kernels on the compute stream, in order

    // `planned`: batches under a plan carry two sets of images and host-drawn view parameters.
    CudaStage(int dev, int64_t batch, int64_t image_bytes, int32_t out_c, int32_t out_h, int32_t out_w, int n_views,
              bool planned, const ssl::ViewParams& plain)
        : device(dev) {
        const cuda::DeviceGuard guard(device);
        HPT_LOADER_CUDA(cudaStreamCreateWithFlags(&copy_stream, cudaStreamNonBlocking));
        const Device d = Device::cuda(dev);
        const int64_t images = planned ? 2 * batch : batch;
        const int64_t param_bytes = 2 * batch * int64_t(sizeof(ssl::ViewParams));
        for (Slot& s : slots) {
            s.pinned_images = cuda::pinned_empty({images * image_bytes}, DType::u8);
            s.pinned_samples = cuda::pinned_empty({batch}, DType::i64);
            s.images = empty({images * image_bytes}, DType::u8, d);
            s.samples = empty({batch}, DType::i64, d);
            if (planned) {
                s.pinned_params = cuda::pinned_empty({param_bytes}, DType::u8);
                s.params = empty({param_bytes}, DType::u8, d);
            }
            HPT_LOADER_CUDA(cudaEventCreateWithFlags(&s.copied, cudaEventDisableTiming));
            HPT_LOADER_CUDA(cudaEventCreateWithFlags(&s.consumed, cudaEventDisableTiming));
        }
        scratch = empty({int64_t(n_views) * batch * out_c * out_h * out_w}, DType::f32, d);
        params = empty({int64_t(n_views) * batch * int64_t(sizeof(ssl::ViewParams))}, DType::u8, d);
        tile_sums = empty({ssl::augment_cuda_tile_sums(batch, n_views, out_h, out_w)}, DType::f64, d);
        Tensor host = empty({batch * int64_t(sizeof(ssl::ViewParams))}, DType::u8);
        for (int64_t i = 0; i < batch; ++i)
            std::memcpy(host.data<uint8_t>() + i * int64_t(sizeof(plain)), &plain, sizeof(plain));
        plain_params = host.to(d);
    }
    ~CudaStage() {  // unchecked calls (a destructor must not throw), then the caller's device back
        int previous = -1;
        cudaGetDevice(&previous);
        cudaSetDevice(device);
        for (Slot& s : slots) {
            if (s.used) cudaEventSynchronize(s.consumed);  // before the pinned memory goes
            if (s.copied) cudaEventDestroy(s.copied);
            if (s.consumed) cudaEventDestroy(s.consumed);
        }
        if (copy_stream) cudaStreamDestroy(copy_stream);
        if (previous >= 0 && previous != device) cudaSetDevice(previous);
    }
    // A slot whose previous batch's kernels (hence also its copy) have finished.
    Slot& acquire() {
        Slot& s = slots[next_slot];
        next_slot ^= 1;
        if (s.used) HPT_LOADER_CUDA(cudaEventSynchronize(s.consumed));
        s.used = true;
        return s;
    }
};

}  // namespace
#endif

// ---------------------------------------------------------------- the loader

struct Loader::Impl {
    ImageSet set;
    LoaderConfig cfg;
    ssl::AugmentConfig aug, plain;
    int32_t h = 0, w = 0, c = 0, out_c = 0;
    int64_t image_bytes = 0;

    // the epoch being iterated
    int64_t epoch = -1;
    std::vector<int64_t> order;
    int64_t n_batches = 0, next_sync = 0;
    bool finished = false;

    // the worker
    struct Item {
        Batch batch;
        std::exception_ptr error;
        bool end = false;
    };
    std::thread worker;
    std::mutex mu;
    std::condition_variable cv_space, cv_items;
    std::deque<Item> queue;
    bool stop = false;
    std::function<void(int64_t, int64_t)> hook;

#ifdef HPT_WITH_CUDA
    std::unique_ptr<CudaStage> cuda;
#endif

    void indices_of(int64_t b, Batch& out);
    Batch make(int64_t b);
    void run_worker(int64_t first, int64_t batches);
    void stop_worker();
};

// This batch's dataset indices: the plan's, or the b-th slice of the epoch's order.
void Loader::Impl::indices_of(int64_t b, Batch& out) {
    if (!cfg.plan) {
        const int64_t bs = cfg.batch_size, begin = b * bs, end = std::min<int64_t>(begin + bs, int64_t(order.size()));
        out.indices.assign(order.begin() + begin, order.begin() + end);
        if (cfg.mode == LoaderMode::augment) out.indices2 = out.indices;
        return;
    }
    BatchPlan p = cfg.plan(epoch, b);
    HPT_CHECK(!p.view1.empty() && p.view1.size() == p.view2.size() && int64_t(p.view1.size()) <= cfg.batch_size,
              "loader: the plan's batch ", b, " of epoch ", epoch, " has ", p.view1.size(), " and ", p.view2.size(),
              " images for its two views; expected the same number, 1 to ", cfg.batch_size);
    const int64_t n = set.size();
    for (const auto* v : {&p.view1, &p.view2})
        for (const int64_t i : *v)
            HPT_CHECK(i >= 0 && i < n, "loader: the plan's batch ", b, " of epoch ", epoch, " names image ", i,
                      " of a set of ", n);
    out.indices = std::move(p.view1);
    out.indices2 = std::move(p.view2);
}

Batch Loader::Impl::make(int64_t b) {
    if (hook) hook(epoch, b);
    Batch out;
    out.epoch = epoch;
    out.index = b;
    indices_of(b, out);
    const int64_t n = out.size();
    const bool planned = bool(cfg.plan);

    Tensor labels = empty({n}, DType::i64);
    {
        int64_t* l = labels.data<int64_t>();
        const int64_t* src = set.labels.defined() ? set.labels.data<int64_t>() : nullptr;
        for (int64_t i = 0; i < n; ++i) l[i] = src ? src[out.indices[size_t(i)]] : -1;
    }
    const uint8_t* all = set.images.data<uint8_t>();
    auto gather = [&](const std::vector<int64_t>& idx, uint8_t* dst) {
        for (size_t i = 0; i < idx.size(); ++i)
            std::memcpy(dst + int64_t(i) * image_bytes, all + idx[i] * image_bytes, size_t(image_bytes));
    };
    const bool augment = cfg.mode == LoaderMode::augment;
    const ssl::AugmentConfig& acfg = augment ? aug : plain;
    const Shape view_shape = {n, out_c, acfg.out_h, acfg.out_w};

    if (cfg.device.is_cpu()) {
        Tensor u8 = empty({n, h, w, c}, DType::u8);
        gather(out.indices, u8.data<uint8_t>());
        if (planned) {
            Tensor u8_2 = empty({n, h, w, c}, DType::u8);
            gather(out.indices2, u8_2.data<uint8_t>());
            out.view1 = ssl::augment_view(u8, out.indices, 0, aug, cfg.seed, epoch, cfg.worker_threads);
            out.view2 = ssl::augment_view(u8_2, out.indices2, 1, aug, cfg.seed, epoch, cfg.worker_threads);
        } else if (augment) {
            out.view1 = empty(view_shape, DType::f32);
            out.view2 = empty(view_shape, DType::f32);
            ssl::augment_batch_into(u8, out.indices, aug, cfg.seed, epoch, out.view1, out.view2, cfg.worker_threads);
        } else {
            const std::vector<ssl::ViewParams> ps(size_t(n), ssl::identity_params(h, w));
            out.images = ssl::apply_views(u8, ps, plain, cfg.worker_threads);
        }
        out.labels = labels;
        return out;
    }
#ifdef HPT_WITH_CUDA
    CudaStage& st = *cuda;
    const cuda::DeviceGuard guard(st.device);
    CudaStage::Slot& slot = st.acquire();
    cudaStream_t compute = cuda::current_stream(st.device);
    // If anything below throws (out of memory, a launch), the slot's `consumed` must still cover
    // this batch's copies and any kernel already launched: else a caller that goes on (a new
    // epoch) could rewrite pinned memory that a copy is still reading. Unchecked calls: unwinding.
    struct Release {
        CudaStage::Slot& slot;
        cudaStream_t copy, compute;
        bool done = false;
        ~Release() {
            if (done) return;
            cudaEventRecord(slot.copied, copy);
            cudaStreamWaitEvent(compute, slot.copied, 0);
            cudaEventRecord(slot.consumed, compute);
        }
    } release{slot, st.copy_stream, compute};
    uint8_t* pin = slot.pinned_images.data<uint8_t>();
    int64_t* pin_samples = slot.pinned_samples.data<int64_t>();
    gather(out.indices, pin);
    if (!planned)
        for (int64_t i = 0; i < n; ++i) pin_samples[i] = out.indices[size_t(i)];
    int64_t copy_images = n;
    int32_t max_r = 0;
    if (planned) {  // view parameters drawn here (cheap), images of both views side by side
        gather(out.indices2, pin + n * image_bytes);
        auto* pp = reinterpret_cast<ssl::ViewParams*>(slot.pinned_params.data<uint8_t>());
        for (int64_t i = 0; i < n; ++i) {
            pp[i] = ssl::draw_view_params(cfg.seed, epoch, out.indices[size_t(i)], 0, aug, h, w);
            pp[n + i] = ssl::draw_view_params(cfg.seed, epoch, out.indices2[size_t(i)], 1, aug, h, w);
        }
        for (int64_t i = 0; i < 2 * n; ++i) max_r = std::max(max_r, pp[i].blur_radius);
        copy_images = 2 * n;
        HPT_LOADER_CUDA(cudaMemcpyAsync(slot.params.data_ptr(), pp, size_t(2 * n) * sizeof(ssl::ViewParams),
                                        cudaMemcpyHostToDevice, st.copy_stream));
    }
    HPT_LOADER_CUDA(cudaMemcpyAsync(slot.images.data_ptr(), pin, size_t(copy_images * image_bytes),
                                    cudaMemcpyHostToDevice, st.copy_stream));
    if (!planned)  // a plan's kernels take the drawn parameters instead of the sample indices
        HPT_LOADER_CUDA(cudaMemcpyAsync(slot.samples.data_ptr(), pin_samples, size_t(n) * sizeof(int64_t),
                                        cudaMemcpyHostToDevice, st.copy_stream));
    HPT_LOADER_CUDA(cudaEventRecord(slot.copied, st.copy_stream));
    HPT_LOADER_CUDA(cudaStreamWaitEvent(compute, slot.copied, 0));
    auto* params_out = static_cast<ssl::ViewParams*>(st.params.data_ptr());
    if (planned) {  // two one-view launches, each over its own images with the given parameters
        out.view1 = empty(view_shape, DType::f32, cfg.device);
        out.view2 = empty(view_shape, DType::f32, cfg.device);
        const auto* given = static_cast<const ssl::ViewParams*>(slot.params.data_ptr());
        const int64_t view_elems = int64_t(out_c) * aug.out_h * aug.out_w;
        for (int v = 0; v < 2; ++v)
            ssl::augment_views_cuda(slot.images.data<uint8_t>() + v * n * image_bytes, int32_t(n), h, w, c, nullptr,
                                    given + v * n, aug, 0, 0, 1, max_r, (v ? out.view2 : out.view1).data<float>(),
                                    nullptr, st.scratch.data<float>() + v * n * view_elems, params_out + v * n,
                                    st.tile_sums.data<double>(), compute);
    } else if (augment) {
        out.view1 = empty(view_shape, DType::f32, cfg.device);
        out.view2 = empty(view_shape, DType::f32, cfg.device);
        ssl::augment_views_cuda(slot.images.data<uint8_t>(), int32_t(n), h, w, c, slot.samples.data<int64_t>(),
                                nullptr, aug, cfg.seed, epoch, 2, ssl::max_blur_radius(aug), out.view1.data<float>(),
                                out.view2.data<float>(), st.scratch.data<float>(), params_out,
                                st.tile_sums.data<double>(), compute);
    } else {
        out.images = empty(view_shape, DType::f32, cfg.device);
        ssl::augment_views_cuda(slot.images.data<uint8_t>(), int32_t(n), h, w, c, nullptr,
                                static_cast<const ssl::ViewParams*>(st.plain_params.data_ptr()), plain, 0, 0, 1, 0,
                                out.images.data<float>(), nullptr, st.scratch.data<float>(), params_out,
                                st.tile_sums.data<double>(), compute);
    }
    HPT_LOADER_CUDA(cudaEventRecord(slot.consumed, compute));
    release.done = true;
    out.labels = labels.to(cfg.device);
    return out;
#else
    HPT_THROW("loader: device ", cfg.device.str(), " in a build without CUDA");
#endif
}

void Loader::Impl::run_worker(int64_t first, int64_t batches) {
#ifdef HPT_WITH_CUDA
    if (cuda) cudaSetDevice(cuda->device);  // the current device is per thread
#endif
    for (int64_t b = first; b < batches; ++b) {
        {
            std::unique_lock<std::mutex> lock(mu);
            cv_space.wait(lock, [&] { return stop || int(queue.size()) < cfg.prefetch; });
            if (stop) return;
        }
        Item it;
        try {
            it.batch = make(b);
        } catch (...) {
            it.error = std::current_exception();
        }
        const bool failed = bool(it.error);
        {
            std::lock_guard<std::mutex> lock(mu);
            queue.push_back(std::move(it));
        }
        cv_items.notify_one();
        if (failed) return;
    }
    Item end;
    end.end = true;
    {
        std::lock_guard<std::mutex> lock(mu);
        queue.push_back(std::move(end));
    }
    cv_items.notify_one();
}

void Loader::Impl::stop_worker() {
    {
        std::lock_guard<std::mutex> lock(mu);
        stop = true;
    }
    cv_space.notify_all();
    if (worker.joinable()) worker.join();
    queue.clear();
    stop = false;
}

Loader::Loader(ImageSet set, LoaderConfig cfg) : impl_(std::make_unique<Impl>()), cfg_(std::move(cfg)) {
    Impl& m = *impl_;
    HPT_CHECK(set.images.defined() && set.images.dim() == 4 && set.images.dtype() == DType::u8 &&
                  set.images.device().is_cpu(),
              "Loader: expected CPU u8 images [N, H, W, C]");
    HPT_CHECK(set.images.size(3) == 1 || set.images.size(3) == 3, "Loader: images must have 1 or 3 channels, got ",
              set.images.size(3));
    HPT_CHECK(cfg_.batch_size >= 1, "Loader: batch_size ", cfg_.batch_size);
    HPT_CHECK(cfg_.prefetch >= 0, "Loader: prefetch ", cfg_.prefetch);
    HPT_CHECK(!cfg_.plan || (cfg_.mode == LoaderMode::augment && cfg_.plan_batches >= 1),
              "Loader: a plan needs augment mode and plan_batches >= 1 (got ", cfg_.plan_batches, ")");
    HPT_CHECK(cfg_.world_size >= 1 && cfg_.rank >= 0 && cfg_.rank < cfg_.world_size, "Loader: rank ", cfg_.rank,
              " of ", cfg_.world_size);
    HPT_CHECK(!set.labels.defined() || (set.labels.dtype() == DType::i64 && set.labels.numel() == set.images.size(0)),
              "Loader: labels must be i64 [N]");
    set.images = set.images.contiguous();
    if (set.labels.defined()) set.labels = set.labels.contiguous();
    m.set = set;
    m.cfg = cfg_;
    m.h = int32_t(set.images.size(1));
    m.w = int32_t(set.images.size(2));
    m.c = int32_t(set.images.size(3));
    m.image_bytes = int64_t(m.h) * m.w * m.c;

    std::vector<double> mean = cfg_.mean, sd = cfg_.std;
    if (mean.empty()) std::tie(mean, sd) = normalization_mean_std(set);
    m.aug = cfg_.augment;
    ssl::set_normalization(m.aug, mean, sd);
    m.plain = ssl::AugmentConfig{};
    m.plain.out_h = int32_t(cfg_.resize > 0 ? cfg_.resize : m.h);
    m.plain.out_w = int32_t(cfg_.resize > 0 ? cfg_.resize : m.w);
    m.plain.gray_to_rgb = cfg_.gray_to_rgb;
    ssl::set_normalization(m.plain, mean, sd);
    const bool augment = cfg_.mode == LoaderMode::augment;
    ssl::check_config(augment ? m.aug : m.plain);  // here, not in the worker's threads
    m.out_c = int32_t(ssl::view_channels(augment ? m.aug : m.plain, m.c));

    if (cfg_.device.is_cuda()) {
#ifdef HPT_WITH_CUDA
        const ssl::AugmentConfig& a = augment ? m.aug : m.plain;
        m.cuda = std::make_unique<CudaStage>(cfg_.device.index, cfg_.batch_size, m.image_bytes, m.out_c, a.out_h,
                                             a.out_w, augment ? 2 : 1,
                                             bool(cfg_.plan), ssl::identity_params(m.h, m.w));
#else
        HPT_THROW("Loader: device ", cfg_.device.str(), " in a build without CUDA");
#endif
    }
}

Loader::~Loader() {
    if (impl_) impl_->stop_worker();
}

int64_t Loader::samples_per_epoch() const {
    const int64_t n = impl_->set.size(), w = cfg_.world_size;
    if (cfg_.drop_last) return n / w;
    return n / w + (cfg_.rank < n % w ? 1 : 0);
}

int64_t Loader::batches_per_epoch() const {
    if (cfg_.plan) return cfg_.plan_batches;
    const int64_t s = samples_per_epoch(), b = cfg_.batch_size;
    return cfg_.drop_last ? s / b : (s + b - 1) / b;
}

std::vector<int64_t> Loader::epoch_indices(int64_t epoch) const {
    const int64_t n = impl_->set.size();
    std::vector<int64_t> order;
    if (cfg_.shuffle) {
        order = epoch_permutation(n, cfg_.seed, epoch);
    } else {
        order.resize(size_t(n));
        for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
    }
    return shard(order, cfg_.rank, cfg_.world_size, cfg_.drop_last);
}

void Loader::start_epoch(int64_t epoch, int64_t first_batch) {
    HPT_CHECK(epoch >= 0, "Loader::start_epoch(", epoch, ")");
    HPT_CHECK(first_batch >= 0 && first_batch <= batches_per_epoch(), "Loader::start_epoch: batch ", first_batch,
              " of an epoch of ", batches_per_epoch());
    Impl& m = *impl_;
    m.stop_worker();
    m.epoch = epoch;
    m.order = cfg_.plan ? std::vector<int64_t>() : epoch_indices(epoch);
    m.n_batches = batches_per_epoch();
    m.next_sync = first_batch;
    m.finished = false;
    if (cfg_.prefetch > 0) m.worker = std::thread([&m, first_batch] { m.run_worker(first_batch, m.n_batches); });
}

bool Loader::next(Batch& out) {
    Impl& m = *impl_;
    HPT_CHECK(m.epoch >= 0, "Loader::next before start_epoch");
    if (m.finished) return false;
    if (cfg_.prefetch == 0) {
        if (m.next_sync >= m.n_batches) {
            m.finished = true;
            return false;
        }
        out = m.make(m.next_sync++);
        return true;
    }
    Impl::Item it;
    {
        std::unique_lock<std::mutex> lock(m.mu);
        m.cv_items.wait(lock, [&] { return !m.queue.empty(); });
        it = std::move(m.queue.front());
        m.queue.pop_front();
    }
    m.cv_space.notify_one();
    if (it.error) {
        m.finished = true;
        if (m.worker.joinable()) m.worker.join();
        std::rethrow_exception(it.error);
    }
    if (it.end) {
        m.finished = true;
        if (m.worker.joinable()) m.worker.join();
        return false;
    }
    out = std::move(it.batch);
    return true;
}

void Loader::set_batch_hook(std::function<void(int64_t, int64_t)> hook) {
    impl_->stop_worker();
    impl_->hook = std::move(hook);
    impl_->epoch = -1;  // takes effect from the next start_epoch
}

}  // namespace hpt::data
