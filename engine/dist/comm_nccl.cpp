// The NCCL communicator for CUDA tensors. Collectives run on a communication stream of their own:
// each waits for the work the caller's current stream has issued so far, and the caller's stream
// waits for it before using the result, so the host never has to synchronise for ordering. The
// host does poll for completion (with dist.timeout_s) where a result is needed, so that a dead or
// hung peer surfaces as an error instead of a hang; a failed or timed-out collective ends the job
// (give_up). None of this has run at more than one rank yet: the GPU machine has one GPU.
#include "engine/dist/comm.h"

#ifdef HPT_WITH_NCCL
#include <cstdint>
#include <nccl.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <iostream>
#include <mutex>
#include <thread>

#include "kernels/cuda/check.h"
#include "kernels/cuda/runtime.h"

namespace hpt::dist {

namespace {

ncclDataType_t nccl_type(DType d) {
    switch (d) {
        case DType::f32: return ncclFloat32;
        case DType::f64: return ncclFloat64;
        case DType::i64: return ncclInt64;
        default: HPT_THROW("NCCL: no datatype for ", dtype_name(d));
    }
}

class NcclComm;

struct NcclWork final : Work {
    NcclComm* comm = nullptr;
    cudaEvent_t done = nullptr;
    std::string what;
    Tensor keep;  // the packing buffer, alive until the caller's stream has waited for it
    void wait() override;
    ~NcclWork() override;
};

class NcclComm final : public Comm {
public:
    NcclComm(double timeout_s, Device device) : device_(device.index) {
        timeout_s_ = timeout_s;
        const LaunchInfo l = detect_launch();
        if (l.world > 1) {
            boot_ = make_mpi_comm(timeout_s);
            rank_ = boot_->rank();
            world_ = boot_->world();
            local_rank_ = boot_->local_rank();
        }
        cuda::DeviceGuard g(device_);
        ncclUniqueId id;
        if (rank_ == 0) HPT_CUDA_CHECK(ncclGetUniqueId(&id));
        if (boot_) {
            static_assert(sizeof(ncclUniqueId) % 8 == 0, "ncclUniqueId travels as i64 words");
            Tensor words = empty({int64_t(sizeof(id) / 8)}, DType::i64, Device::cpu());
            std::memcpy(words.data_ptr(), &id, sizeof id);
            boot_->broadcast(words, 0);
            std::memcpy(&id, words.data_ptr(), sizeof id);
            // ncclCommInitRank makes no MPI calls: an MPI that progresses a broadcast lazily
            // (HCOLL, say) would leave ranks without the id while rank 0 waits in the init.
            boot_->barrier();
        }
        init_within_timeout(id);
        HPT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    }

    // ncclCommInitRank returns only once every rank has joined: a rank that died before joining
    // would keep the others in it forever, and the call cannot be interrupted. So a watchdog names
    // the wait and ends the job after dist.timeout_s.
    void init_within_timeout(const ncclUniqueId& id) {
        std::mutex mu;
        std::condition_variable cv;
        bool joined = false;
        std::thread watchdog;
        if (world_ > 1 && timeout_s_ > 0) {
            watchdog = std::thread([&] {
                std::unique_lock<std::mutex> lock(mu);
                if (cv.wait_for(lock, std::chrono::duration<double>(timeout_s_), [&] { return joined; })) return;
                std::cerr << "error: NCCL (rank " << rank_ << " of " << world_ << "): the ranks did not all join "
                          << "ncclCommInitRank within dist.timeout_s = " << timeout_s_
                          << " s (a rank died or never started); stopping the job" << std::endl;
                abort_job(3);
            });
        }
        const ncclResult_t r = ncclCommInitRank(&comm_, world_, id, rank_);
        {
            std::lock_guard<std::mutex> lock(mu);
            joined = true;
        }
        cv.notify_all();
        if (watchdog.joinable()) watchdog.join();
        HPT_CUDA_CHECK(r);
    }

    ~NcclComm() override {
        cuda::DeviceGuard g(device_);
        if (aborted_) {
            if (boot_) abort_job(3);  // peers may be blocked in NCCL: take the whole job down
            return;
        }
        // Unwinding from this rank's error while peers may wait in a collective or a barrier:
        // ncclCommDestroy would wait for them too, before the error is printed and the job ended
        // (main's handler does both). The process is about to end; the communicator is left as it is.
        if (boot_ && std::uncaught_exceptions() > 0) return;
        HPT_CUDA_CHECK_LOG(cudaStreamSynchronize(stream_));
        HPT_CUDA_CHECK_LOG(ncclCommDestroy(comm_));
        HPT_CUDA_CHECK_LOG(cudaStreamDestroy(stream_));
    }

    int rank() const override { return rank_; }
    int world() const override { return world_; }
    int local_rank() const override { return local_rank_; }
    std::string backend() const override { return "nccl"; }
    int device() const { return device_; }

    void all_reduce_sum(const Tensor& t) override {
        check_cuda(t, "all_reduce");
        const int64_t bytes = count(&CommStats::all_reduce_bytes, t);
        cuda::DeviceGuard g(device_);
        enter();
        HPT_CUDA_CHECK(ncclAllReduce(t.data_ptr(), t.data_ptr(), size_t(t.numel()), nccl_type(t.dtype()), ncclSum,
                                     comm_, stream_));
        finish_blocking(describe("all_reduce", bytes));
    }

    Tensor all_gather(const Tensor& t) override {
        check_cuda(t, "all_gather");
        HPT_CHECK(t.dim() >= 1, "all_gather: needs at least one dimension");
        const int64_t bytes = count(&CommStats::all_gather_bytes, t);
        Shape s = t.shape();
        s[0] *= world_;
        cuda::DeviceGuard g(device_);
        Tensor out = empty(s, t.dtype(), t.device());
        enter();
        HPT_CUDA_CHECK(ncclAllGather(t.data_ptr(), out.data_ptr(), size_t(t.numel()), nccl_type(t.dtype()), comm_,
                                     stream_));
        finish_blocking(describe("all_gather", bytes));
        return out;
    }

    void broadcast(const Tensor& t, int root) override {
        check_cuda(t, "broadcast");
        HPT_CHECK(root >= 0 && root < world_, "broadcast from rank ", root, " in a world of ", world_);
        const int64_t bytes = count(&CommStats::broadcast_bytes, t);
        cuda::DeviceGuard g(device_);
        enter();
        HPT_CUDA_CHECK(ncclBroadcast(t.data_ptr(), t.data_ptr(), size_t(t.numel()), nccl_type(t.dtype()), root, comm_,
                                     stream_));
        finish_blocking(describe("broadcast", bytes));
    }

    void barrier(double timeout_s) override {
        ++stats_.calls;
        cuda::DeviceGuard g(device_);
        HPT_CUDA_CHECK(cudaStreamSynchronize(cuda::current_stream(device_)));
        if (boot_) boot_->barrier(timeout_s);
    }

    std::shared_ptr<Work> all_reduce_mean_async(const Tensor& flat, const Ranges& ranges) override {
        check_cuda(flat, "all_reduce_mean");
        const int64_t n = check_flat_ranges(flat, ranges);
        stats_.all_reduce_bytes += n * 4;
        ++stats_.calls;
        cuda::DeviceGuard g(device_);
        auto w = std::make_shared<NcclWork>();
        w->comm = this;
        w->what = describe("gradient all_reduce", n * 4);
        float* base = flat.data<float>();
        // Created first: should a call below fail after `keep` exists, ~NcclWork must find an event
        // to make the compute stream wait for what was already enqueued on the packing buffer.
        HPT_CUDA_CHECK(cudaEventCreateWithFlags(&w->done, cudaEventDisableTiming));
        enter();
        try {
            enqueue_all_reduce(base, n, ranges, w->keep, flat.device());
        } catch (...) {
            HPT_CUDA_CHECK_LOG(cudaEventRecord(w->done, stream_));
            throw;
        }
        HPT_CUDA_CHECK(cudaEventRecord(w->done, stream_));
        return w;
    }

    // The averaging all-reduce of `ranges` of base[], on stream_: in place for one range, else
    // packed into `keep` and back.
    void enqueue_all_reduce(float* base, int64_t n, const Ranges& ranges, Tensor& keep, Device device) {
        if (ranges.size() == 1) {
            float* p = base + ranges[0].first;
            HPT_CUDA_CHECK(ncclAllReduce(p, p, size_t(n), ncclFloat32, ncclAvg, comm_, stream_));
        } else {
            keep = empty({n}, DType::f32, device);
            float* buf = keep.data<float>();
            int64_t at = 0;
            for (const auto& [b, e] : ranges) {
                HPT_CUDA_CHECK(cudaMemcpyAsync(buf + at, base + b, size_t(e - b) * 4, cudaMemcpyDeviceToDevice, stream_));
                at += e - b;
            }
            HPT_CUDA_CHECK(ncclAllReduce(buf, buf, size_t(n), ncclFloat32, ncclAvg, comm_, stream_));
            at = 0;
            for (const auto& [b, e] : ranges) {
                HPT_CUDA_CHECK(cudaMemcpyAsync(base + b, buf + at, size_t(e - b) * 4, cudaMemcpyDeviceToDevice, stream_));
                at += e - b;
            }
        }
    }

    // Polls `ev` until it completes, NCCL reports an error, or the timeout passes; then makes the
    // caller's stream wait for it.
    void await(cudaEvent_t ev, const std::string& what) {
        const auto start = std::chrono::steady_clock::now();
        for (;;) {
            const cudaError_t q = cudaEventQuery(ev);
            if (q == cudaSuccess) break;
            if (q == cudaErrorNotReady) {
                (void)cudaGetLastError();  // "not yet" is no error: it must not fail the next launch check
            } else {
                HPT_CUDA_CHECK(q);
            }
            ncclResult_t async = ncclSuccess;
            HPT_CUDA_CHECK(ncclCommGetAsyncError(comm_, &async));
            if (async != ncclSuccess) {
                give_up(str("rank ", rank_, " of ", world_, ": ", what, " failed in NCCL: ",
                            ncclGetErrorString(async)));
                HPT_CUDA_CHECK(async);
            }
            const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            if (timeout_s_ > 0 && waited > timeout_s_) {
                const std::string msg = str("rank ", rank_, " of ", world_, ": ", what, " did not finish within ",
                                            timeout_s_, " s (dist.timeout_s): another rank died, hung or is not "
                                            "running the same step; aborting the job");
                give_up(msg);
                throw CommTimeout(msg);
            }
            std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
        HPT_CUDA_CHECK(cudaStreamWaitEvent(cuda::current_stream(device_), ev, 0));
    }

private:
    void check_cuda(const Tensor& t, const char* op) {
        check_collective_tensor(t, op, false);
        HPT_CHECK(t.device().is_cuda() && t.device().index == device_, op, ": the NCCL communicator of cuda:", device_,
                  " got a tensor on ", t.device().str());
        HPT_CHECK(!aborted_, op, ": the communicator was aborted after a timeout");
    }

    // The communication stream waits for everything issued to the caller's stream so far.
    void enter() {
        cudaEvent_t ev;
        HPT_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
        HPT_CUDA_CHECK(cudaEventRecord(ev, cuda::current_stream(device_)));
        HPT_CUDA_CHECK(cudaStreamWaitEvent(stream_, ev, 0));
        HPT_CUDA_CHECK(cudaEventDestroy(ev));
    }

    void finish_blocking(const std::string& what) {
        cudaEvent_t ev;
        HPT_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
        HPT_CUDA_CHECK(cudaEventRecord(ev, stream_));
        try {
            await(ev, what);
        } catch (...) {
            HPT_CUDA_CHECK_LOG(cudaEventDestroy(ev));
            throw;
        }
        HPT_CUDA_CHECK(cudaEventDestroy(ev));
    }

    // A collective failed or timed out: says why, then ends the job when there are peers. Since
    // NCCL 2.19 a communicator is aborted by all its ranks together, so ncclCommAbort on this rank
    // alone can block behind peers stuck in the very collective that failed; MPI_Abort cannot.
    // Alone, the communicator is aborted and the caller throws.
    void give_up(const std::string& msg) {
        std::cerr << "hpt: " << msg << std::endl;
        if (boot_) abort_job(3);
        if (aborted_) return;
        aborted_ = true;
        HPT_CUDA_CHECK_LOG(ncclCommAbort(comm_));
    }

    std::unique_ptr<Comm> boot_;  // MPI: ranks, the unique id, barriers (null in a world of 1)
    int device_ = 0;
    int rank_ = 0, world_ = 1, local_rank_ = 0;
    ncclComm_t comm_ = nullptr;
    cudaStream_t stream_ = nullptr;
    bool aborted_ = false;
};

void NcclWork::wait() {
    if (!done) return;
    cuda::DeviceGuard g(comm->device());
    comm->await(done, what);
    HPT_CUDA_CHECK(cudaEventDestroy(done));
    done = nullptr;
}

NcclWork::~NcclWork() {
    if (!done) return;
    // Dropped without wait(), as an error unwinds past it: the packing buffer goes back to the
    // compute stream's pool, so that stream must not run ahead of the collective that still uses it.
    HPT_CUDA_CHECK_LOG(cudaStreamWaitEvent(cuda::current_stream(comm->device()), done, 0));
    HPT_CUDA_CHECK_LOG(cudaEventDestroy(done));
}

}  // namespace

std::unique_ptr<Comm> make_nccl_comm(double timeout_s, Device device) {
    HPT_CHECK(device.is_cuda(), "NCCL: needs a CUDA device, got ", device.str());
    return std::make_unique<NcclComm>(timeout_s, device);
}

}  // namespace hpt::dist

#else  // no NCCL

namespace hpt::dist {
std::unique_ptr<Comm> make_nccl_comm(double, Device) {
    HPT_THROW("this build has no NCCL (configure with HPT_NCCL=ON and NCCL installed)");
}
}  // namespace hpt::dist

#endif
