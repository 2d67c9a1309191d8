// MoCo v2 (He et al. 2020; Chen et al. 2020) on our engine, in the order of DESIGN.md §2:
//   1. q = normalize(fc(backbone_q(view1)))                      (recorded for backward)
//   2. theta_k <- m theta_k + (1 - m) theta_q                     (parameters only, one op)
//   3. key batch shuffled across BN groups, k = normalize(fc(backbone_k(view2))) without grad,
//      unshuffled
//   4. logits [q.k | q.queue^T] / T, cross-entropy with target 0  (the fused info_nce op)
//   5. backward and the optimizer step                           (the caller's)
//   6. enqueue k at the pointer, pointer += N mod K
// BatchNorm statistics in both encoders are computed over `bn_groups` equal groups of the batch
// (ghost BN), emulating the reference's per-GPU statistics on one device.
//
// Across ranks (data parallelism) the global batch of N = n * world images is split in rank order:
// rank r computes the queries of rows [r n, (r+1) n) and the keys of the same rows of the SHUFFLED
// batch, i.e. of the images key_perm[r n .. (r+1) n) (the sampler hands those images to the rank:
// no images travel). Each rank's BN groups are its share of the bn_groups. The keys are
// all-gathered and unshuffled, so every rank enqueues the same N keys and holds the same queue.
// With the same global batch and bn_groups, W ranks compute what one process computes.
#pragma once
#include <cstdint>
#include <memory>

#include "engine/core/random.h"
#include "engine/dist/comm.h"
#include "models/resnet.h"

namespace hpt::ssl {

struct MocoConfig {
    int64_t queue_size = 65536;  // K; must be divisible by the batch size
    double momentum = 0.999;     // m of the key encoder
    double temperature = 0.2;    // T
    int64_t bn_groups = 0;       // 0: batch / 64 (at least 1)
};

class Moco {
public:
    // The encoder config must have the MLP head. The key encoder starts as a copy of the query
    // encoder; the queue as K standard-normal rows, each L2-normalised, pointer 0. Both encoders
    // are flattened on `device` (one parameter buffer each: step 2 is one kernel).
    Moco(const models::ResNetConfig& encoder, const MocoConfig& cfg, Generator& init, Device device);

    models::ResNet& query() { return *q_; }
    models::ResNet& key() { return *k_; }
    const MocoConfig& config() const { return cfg_; }
    Tensor& queue() { return queue_; }
    int64_t queue_ptr() const { return ptr_; }
    void set_queue_ptr(int64_t p);

    // Steps 1-4 in one process. `key_perm` is the permutation of the batch used for the key forward
    // (step 3); draw it with shuffle_permutation. Returns the loss (backward through the query
    // encoder).
    Tensor loss(const Tensor& view1, const Tensor& view2, const std::vector<int64_t>& key_perm);
    // Steps 1-4 on one rank of `comm`: `view1` holds this rank's n queries, `key_input` the second
    // views of this rank's n rows of the shuffled batch (global row j is image key_perm[j]), and
    // key_perm the permutation of the whole batch of n * world. Returns this rank's mean loss; the
    // caller averages gradients over the ranks.
    Tensor loss_on_rank(const Tensor& view1, const Tensor& key_input, const std::vector<int64_t>& key_perm,
                        dist::Comm& comm);
    // Step 6, with the keys of the last loss().
    void enqueue();

    // BN groups of a global batch over `world` ranks together (the default, batch / 64, rounded
    // up to a multiple of the ranks).
    int64_t bn_groups_for(int64_t batch, int64_t world = 1) const;
    // The permutation for step `step`, drawn from (seed, step) alone so that a resumed run draws
    // the same one.
    static std::vector<int64_t> shuffle_permutation(int64_t batch, uint64_t seed, int64_t step);

private:
    MocoConfig cfg_;
    std::shared_ptr<models::ResNet> q_, k_;
    Tensor queue_;
    int64_t ptr_ = 0;
    Tensor last_keys_;
};

}  // namespace hpt::ssl
