// The MPI communicator: one communication thread per communicator makes every MPI call, in the
// order they were submitted (which every rank shares), while the caller goes on; a wait gives up
// after the timeout. CUDA tensors are staged through host memory on the caller's thread, which
// works with any MPI build (CUDA-aware or not); with NCCL built, CUDA training uses comm_nccl.cpp.
#include "engine/dist/comm.h"

#include <cstdint>
#include <cstdlib>

#ifdef HPT_WITH_MPI
#include <mpi.h>

#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>

#include "engine/autograd/grad_mode.h"
#include "engine/ops/ops.h"

namespace hpt::dist {

namespace {

// MPI is initialised once per process (on first use) and finalised at exit.
struct MpiProcess {
    bool ours = false;
    MpiProcess() {
        int done = 0;
        MPI_Initialized(&done);
        if (done) return;
        int provided = 0;
        MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
        ours = true;
        HPT_CHECK(provided >= MPI_THREAD_SERIALIZED, "MPI: the library provides thread level ", provided,
                  "; hpt needs at least MPI_THREAD_SERIALIZED (one communication thread)");
    }
    ~MpiProcess() {
        int fin = 0;
        MPI_Finalized(&fin);
        if (ours && !fin) MPI_Finalize();
    }
};

void mpi_init_once() { static MpiProcess p; }

void mpi_check(int rc, const char* call) {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    HPT_THROW("MPI: ", call, " failed: ", std::string(msg, size_t(len)));
}

MPI_Datatype mpi_type(DType d) {
    switch (d) {
        case DType::f32: return MPI_FLOAT;
        case DType::f64: return MPI_DOUBLE;
        case DType::i64: return MPI_INT64_T;
        default: HPT_THROW("MPI: no datatype for ", dtype_name(d));
    }
}

int mpi_count(int64_t n, const char* op) {
    HPT_CHECK(n <= INT_MAX, op, ": ", n, " elements exceed MPI's int count");
    return int(n);
}

struct Task {
    std::function<void()> fn;
    std::promise<void> done;
};

class MpiComm;

// An asynchronous collective; `after` runs on the waiting thread once it is done (copies back to
// a CUDA tensor).
struct MpiWork final : Work {
    MpiComm* comm;
    std::shared_future<void> done;
    std::string what;
    std::function<void()> after;
    bool finished = false;
    void wait() override;
};

class MpiComm final : public Comm {
public:
    explicit MpiComm(double timeout_s) {
        mpi_init_once();
        timeout_s_ = timeout_s;
        mpi_check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
        MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
        MPI_Comm_rank(comm_, &rank_);
        MPI_Comm_size(comm_, &world_);
        MPI_Comm node;
        mpi_check(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node), "MPI_Comm_split_type");
        MPI_Comm_rank(node, &local_rank_);
        MPI_Comm_free(&node);
        thread_ = std::thread([this] { loop(); });
    }

    ~MpiComm() override {
        if (timed_out_) {
            // The communication thread is stuck inside MPI and cannot be joined or cancelled; the
            // message was printed when the wait gave up. Take the whole job down.
            abort_job(3);
        }
        {
            std::lock_guard<std::mutex> lock(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        thread_.join();
        MPI_Comm_free(&comm_);
    }

    int rank() const override { return rank_; }
    int world() const override { return world_; }
    int local_rank() const override { return local_rank_; }
    std::string backend() const override { return "mpi"; }

    void all_reduce_sum(const Tensor& t) override {
        check_collective_tensor(t, "all_reduce", false);
        const int64_t bytes = count(&CommStats::all_reduce_bytes, t);
        const Tensor h = host(t);
        run(describe("all_reduce", bytes), [this, h] {
            mpi_check(MPI_Allreduce(MPI_IN_PLACE, h.data_ptr(), mpi_count(h.numel(), "all_reduce"), mpi_type(h.dtype()),
                                    MPI_SUM, comm_),
                      "MPI_Allreduce");
        });
        copy_back(t, h);
    }

    Tensor all_gather(const Tensor& t) override {
        check_collective_tensor(t, "all_gather", false);
        HPT_CHECK(t.dim() >= 1, "all_gather: needs at least one dimension");
        const int64_t bytes = count(&CommStats::all_gather_bytes, t);
        const Tensor h = host(t);
        Shape s = t.shape();
        s[0] *= world_;
        Tensor out = empty(s, t.dtype(), Device::cpu());
        run(describe("all_gather", bytes), [this, h, out] {
            const int n = mpi_count(h.numel(), "all_gather");
            mpi_check(MPI_Allgather(h.data_ptr(), n, mpi_type(h.dtype()), out.data_ptr(), n, mpi_type(h.dtype()), comm_),
                      "MPI_Allgather");
        });
        return t.device().is_cpu() ? out : out.to(t.device());
    }

    void broadcast(const Tensor& t, int root) override {
        check_collective_tensor(t, "broadcast", false);
        HPT_CHECK(root >= 0 && root < world_, "broadcast from rank ", root, " in a world of ", world_);
        const int64_t bytes = count(&CommStats::broadcast_bytes, t);
        const Tensor h = host(t);
        run(describe("broadcast", bytes), [this, h, root] {
            mpi_check(MPI_Bcast(h.data_ptr(), mpi_count(h.numel(), "broadcast"), mpi_type(h.dtype()), root, comm_),
                      "MPI_Bcast");
        });
        copy_back(t, h);
    }

    void barrier(double timeout_s) override {
        ++stats_.calls;
        run("barrier", [this] { mpi_check(MPI_Barrier(comm_), "MPI_Barrier"); }, timeout_s);
    }

    std::shared_ptr<Work> all_reduce_mean_async(const Tensor& flat, const Ranges& ranges) override {
        const int64_t n = check_flat_ranges(flat, ranges);
        stats_.all_reduce_bytes += n * 4;
        ++stats_.calls;
        auto w = std::make_shared<MpiWork>();
        w->comm = this;
        w->what = describe("gradient all_reduce", n * 4);
        const float scale = 1.0f / float(world_);
        if (flat.device().is_cpu()) {
            w->done = submit([this, flat, ranges, n, scale] { reduce_ranges(flat.data<float>(), ranges, n, scale); });
            return w;
        }
        // CUDA: pack the ranges into one host buffer here, reduce it there, unpack on wait().
        Tensor packed;
        {
            NoGradGuard ng;
            std::vector<Tensor> parts;
            for (const auto& [b, e] : ranges) parts.push_back(flat.slice(0, b, e));
            packed = (parts.size() == 1 ? parts[0].contiguous() : cat(parts, 0)).to(Device::cpu());
        }
        w->done = submit([this, packed, n, scale] {
            reduce_ranges(packed.data<float>(), Ranges{{0, n}}, n, scale);
        });
        w->after = [flat, ranges, packed] {
            NoGradGuard ng;
            const Tensor back = packed.to(flat.device());
            int64_t at = 0;
            for (const auto& [b, e] : ranges) {
                flat.slice(0, b, e).copy_(back.slice(0, at, at + (e - b)));
                at += e - b;
            }
        };
        return w;
    }

    // Waits for `f` up to the timeout (timeout_s < 0: the communicator's; 0: no limit).
    void await(const std::shared_future<void>& f, const std::string& what, double timeout_s = -1) {
        const double limit = timeout_s < 0 ? timeout_s_ : timeout_s;
        if (limit > 0 && f.wait_for(std::chrono::duration<double>(limit)) != std::future_status::ready) {
            timed_out_ = true;
            const std::string msg = str("rank ", rank_, " of ", world_, ": ", what, " did not finish within ", limit,
                                        " s (dist.timeout_s): another rank died, hung or is not running the same "
                                        "step; aborting the job");
            std::cerr << "hpt: " << msg << std::endl;
            throw CommTimeout(msg);
        }
        f.get();  // rethrows an MPI error from the communication thread
    }

private:
    // Sums `n` floats laid out as `ranges` of `data` across ranks, then scales them.
    void reduce_ranges(float* data, const Ranges& ranges, int64_t n, float scale) {
        const int count = mpi_count(n, "all_reduce_mean");
        if (ranges.size() == 1) {
            float* p = data + ranges[0].first;
            mpi_check(MPI_Allreduce(MPI_IN_PLACE, p, count, MPI_FLOAT, MPI_SUM, comm_), "MPI_Allreduce");
            for (int64_t i = 0; i < n; ++i) p[i] *= scale;
            return;
        }
        std::vector<float> buf(static_cast<size_t>(n));
        int64_t at = 0;
        for (const auto& [b, e] : ranges) {
            std::memcpy(buf.data() + at, data + b, size_t(e - b) * sizeof(float));
            at += e - b;
        }
        mpi_check(MPI_Allreduce(MPI_IN_PLACE, buf.data(), count, MPI_FLOAT, MPI_SUM, comm_), "MPI_Allreduce");
        at = 0;
        for (const auto& [b, e] : ranges) {
            for (int64_t i = b; i < e; ++i) data[i] = buf[size_t(at + i - b)] * scale;
            at += e - b;
        }
    }

    static Tensor host(const Tensor& t) { return t.device().is_cpu() ? t : t.to(Device::cpu()); }
    static void copy_back(const Tensor& t, const Tensor& h) {
        if (t.device().is_cpu()) return;
        NoGradGuard ng;
        t.copy_(h.to(t.device()));
    }

    std::shared_future<void> submit(std::function<void()> fn) {
        HPT_CHECK(!timed_out_, "rank ", rank_, ": the communicator gave up after a timeout and cannot be used");
        auto task = std::make_shared<Task>();
        task->fn = std::move(fn);
        std::shared_future<void> f = task->done.get_future().share();
        {
            std::lock_guard<std::mutex> lock(mu_);
            queue_.push_back(task);
        }
        cv_.notify_one();
        return f;
    }

    void run(const std::string& what, std::function<void()> fn, double timeout_s = -1) {
        await(submit(std::move(fn)), what, timeout_s);
    }

    void loop() {
        for (;;) {
            std::shared_ptr<Task> t;
            {
                std::unique_lock<std::mutex> lock(mu_);
                cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
                if (queue_.empty()) return;
                t = queue_.front();
                queue_.pop_front();
            }
            try {
                t->fn();
                t->done.set_value();
            } catch (...) {
                t->done.set_exception(std::current_exception());
            }
        }
    }

    MPI_Comm comm_ = MPI_COMM_NULL;
    int rank_ = 0, world_ = 1, local_rank_ = 0;
    std::thread thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::shared_ptr<Task>> queue_;
    bool stop_ = false;
    bool timed_out_ = false;
};

void MpiWork::wait() {
    if (finished) return;
    static_cast<MpiComm*>(comm)->await(done, what);
    if (after) after();
    finished = true;
}

}  // namespace

std::unique_ptr<Comm> make_mpi_comm(double timeout_s) { return std::make_unique<MpiComm>(timeout_s); }

void abort_job(int code) {
    int up = 0, down = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    if (up && !down) MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
}

}  // namespace hpt::dist

#else  // no MPI

namespace hpt::dist {
void abort_job(int code) { std::_Exit(code); }
std::unique_ptr<Comm> make_mpi_comm(double) {
    HPT_THROW("this build has no MPI (install libopenmpi-dev and configure with HPT_MPI=ON) but the run needs it");
}
}  // namespace hpt::dist

#endif
