// Data parallelism over a module's flat gradient buffer.
//
// GradReducer splits the trainable part of the buffer into buckets of about `bucket_bytes`, in
// the reverse of the parameters' order (the order backward produces their gradients). A
// post-accumulate hook on every trainable parameter counts down its bucket; when a bucket is
// complete its average over the ranks starts at once (MPI: on the communication thread; NCCL: on
// the communication stream) while backward goes on with the earlier layers. Buckets start in
// index order on every rank whatever order their hooks fire in, so all ranks issue the same
// sequence of collectives (at one rank the local communicator's are no-ops). finish() starts what is left (parameters that got no gradient) and
// waits for everything: after it, every rank holds the same averaged gradients.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/dist/comm.h"
#include "engine/nn/module.h"

namespace hpt::dist {

class GradReducer {
public:
    GradReducer(nn::Module& module, Comm& comm, int64_t bucket_bytes = int64_t(8) << 20);
    ~GradReducer();
    GradReducer(const GradReducer&) = delete;
    GradReducer& operator=(const GradReducer&) = delete;

    // After backward, before the optimizer step.
    void finish();

    size_t num_buckets() const { return buckets_.size(); }
    // Buckets whose all-reduce started from a hook, i.e. before backward ended (last step).
    int64_t started_during_backward() const { return started_early_; }

private:
    struct Bucket {
        Ranges ranges;
        int expected = 0;  // trainable parameters in the bucket
        int pending = 0;   // of those, still without this step's gradient
        std::shared_ptr<Work> work;
    };
    void on_ready(size_t b);
    void launch(size_t b);

    Comm& comm_;
    Tensor flat_;
    std::vector<Bucket> buckets_;
    size_t next_ = 0;  // buckets [0, next_) have started
    int64_t started_early_ = 0, early_count_ = 0;
    std::vector<std::weak_ptr<TensorImpl>> hooked_;
};

// Overwrites every parameter and buffer of `module` with rank `root`'s (one broadcast for the flat
// parameter buffer, one per buffer tensor).
void broadcast_state(nn::Module& module, Comm& comm, int root = 0);

}  // namespace hpt::dist
