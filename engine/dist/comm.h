// Collective communication between the ranks of a data-parallel run.
//
// Three implementations behind one interface:
//   local  world size 1, no library (every collective is the identity)
//   mpi    OpenMPI, for CPU tensors; CUDA tensors are staged through host memory. Ranks come from
//          the launcher (mpirun, or srun with PMIx). Every MPI call runs on one communication
//          thread per communicator, so backward keeps computing while a bucket is reduced.
//   nccl   NCCL for CUDA tensors, on its own stream; MPI broadcasts the unique id.
//
// Every blocking call, and every wait on an asynchronous one, gives up after the timeout with a
// CommTimeout naming the collective, its size and the rank. A rank that died or hangs therefore
// stops the others instead of leaving them blocked. Because a timed-out collective cannot be
// cancelled, the message is printed at once and the communicator aborts the whole job (MPI_Abort)
// when it is destroyed.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/tensor.h"

namespace hpt::dist {

class CommTimeout : public Error {
public:
    using Error::Error;
};

// Payload bytes this rank contributed to collectives (the buffer sizes, not the wire traffic;
// a ring all-reduce moves 2 (W-1)/W times that over each link).
struct CommStats {
    int64_t all_reduce_bytes = 0;
    int64_t all_gather_bytes = 0;
    int64_t broadcast_bytes = 0;
    int64_t calls = 0;
    int64_t total() const { return all_reduce_bytes + all_gather_bytes + broadcast_bytes; }
};

using Ranges = std::vector<std::pair<int64_t, int64_t>>;  // [begin, end) element ranges

// A collective in flight. wait() returns once its result is in place (for CUDA: ordered before
// any later work on the caller's current stream) and throws CommTimeout after the timeout.
class Work {
public:
    virtual ~Work() = default;
    virtual void wait() = 0;
};

class Comm {
public:
    virtual ~Comm() = default;
    virtual int rank() const = 0;
    virtual int world() const = 0;
    virtual int local_rank() const = 0;  // rank among the ranks on this node (picks the GPU)
    virtual std::string backend() const = 0;

    // In place: every rank ends with the element-wise sum. Contiguous f32, f64 or i64.
    virtual void all_reduce_sum(const Tensor& t) = 0;
    // [n, ...] on every rank -> [world * n, ...] in rank order, on t's device.
    virtual Tensor all_gather(const Tensor& t) = 0;
    // In place from `root`'s values.
    virtual void broadcast(const Tensor& t, int root) = 0;
    // timeout_s < 0: the communicator's timeout; 0: no limit (peers evaluating for minutes).
    virtual void barrier(double timeout_s = -1) = 0;
    // Starts averaging `ranges` of the contiguous f32 buffer `flat` over the ranks. Several ranges
    // travel packed in one message. Ranks must start their asynchronous collectives in the same order.
    virtual std::shared_ptr<Work> all_reduce_mean_async(const Tensor& flat, const Ranges& ranges) = 0;

    const CommStats& stats() const { return stats_; }
    void reset_stats() { stats_ = CommStats(); }
    double timeout_s() const { return timeout_s_; }
    void set_timeout(double s) { timeout_s_ = s; }

protected:
    // Counts one collective of `t`'s size into `field`; returns the bytes.
    int64_t count(int64_t CommStats::*field, const Tensor& t) {
        const int64_t bytes = t.numel() * int64_t(t.element_size());
        stats_.*field += bytes;
        ++stats_.calls;
        return bytes;
    }
    CommStats stats_;
    double timeout_s_ = 300;
};

struct CommOptions {
    std::string backend = "auto";  // auto | none | mpi | nccl
    double timeout_s = 300;
};

// The launcher's view of this process, from its environment (no MPI call): mpirun (OMPI_*),
// PMIx (srun --mpi=pmix), or PMI. world = 1 when not launched.
struct LaunchInfo {
    bool launched = false;
    int rank = 0, world = 1, local_rank = 0;
};
LaunchInfo detect_launch();

// "auto": MPI when a launcher started this process as one of several ranks, NCCL on top of it
// for CUDA devices (when built with NCCL), else the local communicator. "none" refuses to run as
// one of several ranks (each would train alone). `device` is where the training tensors live.
std::unique_ptr<Comm> make_comm(const CommOptions& o, Device device);

// The same device spec resolved for a rank: a CUDA device becomes cuda:<local rank> when the
// launcher started several ranks on this node.
Device device_for_rank(Device d, const LaunchInfo& l);
// Why NCCL cannot run these ranks, one per GPU, when the node's processes each see `gpus` GPUs, or "".
std::string why_ranks_share_gpus(const LaunchInfo& l, int gpus);

// Implementations (comm_local.cpp, comm_mpi.cpp, comm_nccl.cpp).
std::unique_ptr<Comm> make_local_comm();
std::unique_ptr<Comm> make_mpi_comm(double timeout_s);                          // throws without MPI
std::unique_ptr<Comm> make_nccl_comm(double timeout_s, Device device);          // throws without NCCL

// Ends this process and, when MPI runs, the whole job (MPI_Abort); for a collective that cannot
// be cancelled.
[[noreturn]] void abort_job(int code);

// Shared by the implementations.
void check_collective_tensor(const Tensor& t, const char* op, bool floating_only);
std::string describe(const char* op, int64_t bytes);
// Checks a flat f32 buffer and ranges inside it for all_reduce_mean_async; returns their elements.
int64_t check_flat_ranges(const Tensor& flat, const Ranges& ranges);

}  // namespace hpt::dist
