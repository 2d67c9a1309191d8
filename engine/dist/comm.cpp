#include "engine/dist/comm.h"

#include <cstdint>
#include <cstdlib>
#include <iomanip>
#include <sstream>

#include "engine/core/device.h"

namespace hpt::dist {

namespace {

int env_int(const char* name, int fallback) {
    const char* v = std::getenv(name);
    if (!v || !*v) return fallback;
    char* end = nullptr;
    const long x = std::strtol(v, &end, 10);
    return end && *end == 0 ? int(x) : fallback;
}

}  // namespace

LaunchInfo detect_launch() {
    LaunchInfo l;
    // mpirun (OpenMPI), PMIx (srun --mpi=pmix, prterun), PMI-1/2 (MPICH-style launchers).
    const struct {
        const char *rank, *size, *local;
    } schemes[] = {{"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"},
                   {"PMIX_RANK", "SLURM_NTASKS", "SLURM_LOCALID"},
                   {"PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"}};
    for (const auto& s : schemes) {
        if (!std::getenv(s.rank)) continue;
        l.launched = true;
        l.rank = env_int(s.rank, 0);
        l.world = env_int(s.size, 1);
        l.local_rank = env_int(s.local, l.rank);
        break;
    }
    return l;
}

Device device_for_rank(Device d, const LaunchInfo& l) {
    if (!d.is_cuda() || l.world <= 1 || d.index != 0) return d;
    // One GPU per local rank, counted among the GPUs this process sees: a launcher that shows each
    // rank only its own GPU (Slurm's --gpus-per-task=1, a CUDA_VISIBLE_DEVICES per rank) leaves
    // every rank cuda:0, which cuda:local_rank would name a device that does not exist.
    const int n = cuda_device_count();
    return Device::cuda(n > 0 ? l.local_rank % n : l.local_rank);
}

std::string why_ranks_share_gpus(const LaunchInfo& l, int gpus) {
    // With one visible GPU each rank was shown its own; with more, device_for_rank's modulo puts
    // local ranks r and r + gpus on one GPU, which NCCL refuses with a less helpful message.
    if (l.world <= 1 || gpus <= 1 || l.local_rank < gpus) return "";
    return str("rank ", l.rank, " is local rank ", l.local_rank, " on a node whose processes see ", gpus,
               " GPUs, so it would share cuda:", l.local_rank % gpus, " with local rank ", l.local_rank % gpus,
               "; NCCL needs a GPU per rank: start at most ", gpus, " ranks per node, or set dist.backend = \"mpi\"");
}

std::unique_ptr<Comm> make_comm(const CommOptions& o, Device device) {
    HPT_CHECK(o.backend == "auto" || o.backend == "none" || o.backend == "mpi" || o.backend == "nccl",
              "dist.backend = \"", o.backend, "\" is not one of auto, none, mpi, nccl");
    HPT_CHECK(o.timeout_s >= 0, "dist.timeout_s = ", o.timeout_s, " must be >= 0 (0: no limit)");
    const LaunchInfo l = detect_launch();
    // The rank's GPU becomes this thread's current device. Otherwise each op's device guard returns
    // to cuda:0 after it, and every rank keeps a context on GPU 0 (hundreds of MiB each; refused
    // outright when the GPUs are in exclusive-process mode).
    if (device.is_cuda()) set_current_cuda_device(device.index);  // one rank on cuda:1 too
    std::string backend = o.backend;
    if (backend == "auto") {
#ifdef HPT_WITH_NCCL
        const bool nccl = device.is_cuda();
#else
        const bool nccl = false;  // CUDA tensors then travel through host memory over MPI
#endif
        backend = l.world <= 1 ? "none" : nccl ? "nccl" : "mpi";
    }
    if (backend == "none") {
        HPT_CHECK(l.world <= 1, "dist.backend = \"none\" but the launcher started ", l.world,
                  " ranks: each would train alone (use dist.backend = \"auto\")");
        return make_local_comm();
    }
    if (backend == "nccl") {
        HPT_CHECK(device.is_cuda(), "dist.backend = \"nccl\" needs a CUDA device, not ", device.str());
        const std::string shared = why_ranks_share_gpus(l, cuda_device_count());
        HPT_CHECK(shared.empty(), shared);
        return make_nccl_comm(o.timeout_s, device);  // throws, naming the option, in a build without NCCL
    }
    return make_mpi_comm(o.timeout_s);
}

void check_collective_tensor(const Tensor& t, const char* op, bool floating_only) {
    HPT_CHECK(t.defined() && t.is_contiguous(), op, ": needs a defined contiguous tensor");
    const DType d = t.dtype();
    const bool ok = d == DType::f32 || d == DType::f64 || (!floating_only && d == DType::i64);
    HPT_CHECK(ok, op, ": dtype ", dtype_name(d), " is not supported (f32, f64", floating_only ? "" : ", i64", ")");
}

int64_t check_flat_ranges(const Tensor& flat, const Ranges& ranges) {
    check_collective_tensor(flat, "all_reduce_mean", true);
    HPT_CHECK(flat.dtype() == DType::f32 && flat.dim() == 1, "all_reduce_mean: needs a flat f32 buffer, got ",
              dtype_name(flat.dtype()), shape_str(flat.shape()));
    int64_t n = 0;
    for (const auto& [b, e] : ranges) {
        HPT_CHECK(0 <= b && b <= e && e <= flat.numel(), "all_reduce_mean: range [", b, ", ", e,
                  ") outside a buffer of ", flat.numel());
        n += e - b;
    }
    return n;
}

std::string describe(const char* op, int64_t bytes) {
    std::ostringstream os;
    os << op << " of " << std::fixed << std::setprecision(bytes >= 1 << 20 ? 1 : 0);
    if (bytes >= 1 << 20) {
        os << double(bytes) / (1 << 20) << " MiB";
    } else {
        os << bytes << " bytes";
    }
    return os.str();
}

}  // namespace hpt::dist
