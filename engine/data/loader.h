// Batches of an ImageSet for training and evaluation.
//
// Order: each epoch visits a permutation of the set that is a pure function of (seed, epoch)
// (identity without shuffle). Sharding for data parallelism: rank r of W takes the positions
// r, r + W, r + 2W, ... of that order, so the shards are disjoint and cover the epoch; with
// drop_last the order is first cut to a multiple of W (every rank gets the same count, and then
// the same number of full batches, as lockstep all-reduces need); without it the first N mod W
// ranks get one sample more and the last batch may be short.
//
// Modes:
//   augment  two views per image by the MoCo v2 / HPT policy (ssl/augment.h), keyed by
//            (seed, epoch, dataset index, view): the same views whatever the batch, the rank, the
//            thread count or the device
//   plain    the images normalised, optionally resized (bilinear, half-pixel centres) to a fixed
//            square size: for evaluation and embedding
// Normalisation uses `mean`/`std` when given (pass the TRAINING split's statistics when loading
// val or test), else the set's own channel_mean_std.
//
// A plan (augment mode) replaces the loader's own order and sharding: batch `index` of `epoch` is
// view 1 of the images plan.view1 and view 2 of the images plan.view2 — the same images, or others:
// under shuffle BN MoCo's keys are other rows of the global batch, which each rank loads itself.
// Views stay keyed by (seed, epoch, dataset index, view), so a plan decides which images meet in
// a batch, never how an image is augmented. The planner runs on the thread that makes the batch.
//
// Prefetching: with prefetch > 0 a worker thread assembles (and on the CPU augments) up to
// `prefetch` batches ahead while the caller computes. Errors in the worker are re-thrown by
// next(); the destructor and start_epoch() stop the worker cleanly. On the CPU the worker's
// augmentation uses `worker_threads` OpenMP threads (0: all), which share the cores with the
// caller's work.
//
// CUDA device: the u8 batch is gathered into pinned host memory (kernels/cuda/runtime.h) and
// copied asynchronously on the loader's own stream; the device's current stream (hpt's compute
// stream) waits for that copy and runs the augmentation kernel (kernels/cuda/augment.cu), which
// makes the views there. Views and labels are allocated on that stream by the engine's
// stream-ordered allocator, so next() never waits for the GPU and a released batch's memory can
// go to the next one without a race.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "engine/data/dataset.h"
#include "ssl/augment.h"

namespace hpt::data {

enum class LoaderMode { augment, plain };

struct BatchPlan {
    std::vector<int64_t> view1, view2;  // dataset indices, equally many, at most batch_size
};
using Planner = std::function<BatchPlan(int64_t epoch, int64_t index)>;

struct LoaderConfig {
    LoaderMode mode = LoaderMode::augment;
    int64_t batch_size = 256;
    bool shuffle = true;
    bool drop_last = true;
    uint64_t seed = 0;
    int rank = 0, world_size = 1;
    int prefetch = 2;         // batches made ahead on a worker thread; 0: made by next() itself
    int worker_threads = 0;   // CPU threads of the worker's augmentation; 0: all
    Device device = Device::cpu();
    std::vector<double> mean, std;  // empty: the set's own statistics
    ssl::AugmentConfig augment;     // augment mode (its mean/std are replaced by the above)
    int64_t resize = 0;             // plain mode: output size (square); 0 keeps the images' size
    bool gray_to_rgb = false;       // plain mode: 1-channel images become 3 channels
    Planner plan;                   // augment mode: explicit batches (see above); empty: the own order
    int64_t plan_batches = 0;       // with a plan: batches per epoch
};

struct Batch {
    int64_t epoch = 0, index = 0;  // which batch of which epoch
    std::vector<int64_t> indices;  // dataset indices of the images (of view1 in augment mode)
    std::vector<int64_t> indices2; // augment mode: dataset indices of view2's images (== indices without a plan)
    Tensor labels;                 // i64 [B] on the device
    Tensor view1, view2;           // augment mode: f32 [B, C, H, W] on the device
    Tensor images;                 // plain mode: f32 [B, C, H, W] on the device
    int64_t size() const { return int64_t(indices.size()); }
};

// The epoch's order of [0, n): a seeded permutation (pure function of (seed, epoch)).
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);
// Rank's share of an epoch's order (see above).
std::vector<int64_t> shard(const std::vector<int64_t>& order, int rank, int world_size, bool drop_last);

class Loader {
public:
    Loader(ImageSet set, LoaderConfig cfg);
    ~Loader();
    Loader(const Loader&) = delete;
    Loader& operator=(const Loader&) = delete;

    const LoaderConfig& config() const { return cfg_; }
    int64_t samples_per_epoch() const;  // this rank's, after drop_last (of the own order)
    int64_t batches_per_epoch() const;  // with a plan: plan_batches
    // The dataset indices this rank visits in `epoch` by the own order (before batching).
    std::vector<int64_t> epoch_indices(int64_t epoch) const;

    // Starts (or restarts) an epoch at batch `first_batch` (a resumed run starts mid-epoch); the
    // worker begins assembling from there.
    void start_epoch(int64_t epoch, int64_t first_batch = 0);
    // The next batch of the current epoch; false at its end. Re-throws the worker's errors.
    bool next(Batch& out);

    // Test hook: called before each batch is made, on the thread that makes it (throw to simulate
    // a failure). Stops the current epoch: call start_epoch afterwards.
    void set_batch_hook(std::function<void(int64_t epoch, int64_t index)> hook);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    LoaderConfig cfg_;
};

}  // namespace hpt::data
