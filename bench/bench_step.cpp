// bench_step: MoCo v2 training steps per second — our engine next to a PyTorch MoCo v2 step
// (tools/peer_step.py) on the same device, configurations and random inputs, in one run.
// A step is: query forward, momentum update, shuffled key forward, InfoNCE, backward, SGD, enqueue.
//
// Started by mpirun as several ranks, each rank takes its share of the batch and the step adds the
// keys' all-gather and the bucketed gradient all-reduce; rank 0 reports images/s of the whole
// batch and the bytes each rank put into collectives per step. PyTorch runs only at one rank.
#include <cstdint>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <sstream>

#include "bench/common.h"
#include "engine/autograd/grad_mode.h"
#include "engine/dist/reducer.h"
#include "engine/optim/sgd.h"
#include "kernels/cpu/parallel.h"
#include "ssl/moco.h"
#ifdef HPT_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

using namespace hpt;
using namespace hpt::bench;

namespace {

struct Case {
    int depth;
    bool small_stem;
    int64_t image, batch, queue;
    int warmup, min_reps;
    std::string shape() const {
        return "resnet" + std::to_string(depth) + (small_stem ? "-small" : "") + "_img" + std::to_string(image) +
               "_b" + std::to_string(batch) + "_K" + std::to_string(queue);
    }
};

// Our MoCo v2 step, the same configuration as the peer's.
struct OurStep {
    ssl::Moco moco;
    optim::SGD opt;
    dist::Comm& comm;
    dist::GradReducer reducer;
    Device device;
    Tensor x1, x2;
    int64_t batch, step = 0;
    static models::ResNetConfig encoder(const Case& c) {
        models::ResNetConfig enc;
        enc.depth = c.depth;
        enc.small_stem = c.small_stem;
        enc.head = models::Head::mlp;
        return enc;
    }
    static ssl::MocoConfig moco_config(const Case& c, int world) {
        ssl::MocoConfig mc;
        mc.queue_size = c.queue;
        mc.bn_groups = world;  // one BN group per rank (at one rank: as the peer)
        return mc;
    }
    OurStep(const Case& c, Generator& g, dist::Comm& cm, Device dev)
        : moco(encoder(c), moco_config(c, cm.world()), g, dev),
          opt(moco.query(), {0.03, 0.9, 1e-4}),
          comm(cm),
          reducer(moco.query(), cm),
          device(dev),
          batch(c.batch) {
        HPT_CHECK(c.batch % cm.world() == 0, "bench_step: batch ", c.batch, " over ", cm.world(), " ranks");
        const int64_t local = c.batch / cm.world();
        x1 = g.randn({local, 3, c.image, c.image}).to(dev);
        x2 = g.randn({local, 3, c.image, c.image}).to(dev);  // this rank's rows of the shuffled key batch
    }
    void run() {
        const auto perm = ssl::Moco::shuffle_permutation(batch, 1, step++);
        const Tensor loss = moco.loss_on_rank(x1, x2, perm, comm);
        moco.query().zero_grad();
        loss.backward();
        reducer.finish();
        opt.step(0.03);
        moco.enqueue();
#ifdef HPT_WITH_CUDA
        if (device.is_cuda()) cuda::synchronize(device.index);  // the step's time, not its launch time
#endif
    }
};

// Several ranks: every rank must run the same number of steps (each step has collectives), so the
// count comes from the slowest rank's first step. Returns this rank's median step time.
Timing time_ranks(OurStep& s, dist::Comm& comm, double min_seconds, int min_reps) {
    comm.barrier();
    auto t0 = std::chrono::steady_clock::now();
    s.run();
    // On the training device: NCCL takes only tensors on its own GPU.
    Tensor first = full({1}, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), DType::f64,
                        s.device);
    comm.all_reduce_sum(first);  // the sum bounds the slowest rank's time from above
    const int reps = std::max(min_reps, int(std::ceil(min_seconds / first.item<double>() * comm.world())));
    std::vector<double> ms;
    for (int r = 0; r < reps; ++r) {
        t0 = std::chrono::steady_clock::now();
        s.run();
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    Timing t;
    t.reps = reps;
    t.median_ms = ms[ms.size() / 2];
    t.min_ms = ms.front();
    t.max_ms = ms.back();
    return t;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        CommonArgs args;
        args.min_seconds = 5.0;
        args.filter = "";
        const char* usage =
            "usage: bench_step [--device cpu|cuda[:N]] [--filter SUBSTR] [--min-time S] [--threads N]\n"
            "                  [--out FILE] [--no-peer]\n"
            "  times MoCo v2 steps (ResNet-18 small stem at 32x32, batch 64 and 256; ResNet-50 at\n"
            "  224x224, batch 32 on the CPU, 256 on a GPU) next to tools/peer_step.py on the same device.\n"
            "  Under mpirun each rank takes its share of the batch (NCCL on GPUs, MPI on the CPU).\n";
        if (!parse_args(argc, argv, usage, args)) return 0;
        if (args.threads > 0) set_num_threads(args.threads);
        const std::string &out = args.out, &filter = args.filter, &device_spec = args.device;
        const double min_seconds = args.min_seconds;
        bool peer_on = args.peer;
        Device device = Device::parse(device_spec);
        if (device.is_cuda()) {
            HPT_CHECK(cuda_device_count() > device.index, device_spec, " requested but ",
                      cuda_device_count(), " CUDA device(s) are visible");
            device = dist::device_for_rank(device, dist::detect_launch());
        }
        const std::unique_ptr<dist::Comm> comm = dist::make_comm({}, device);
        const bool lead = comm->rank() == 0;
        if (comm->world() > 1) peer_on = false;  // the peer is a single process
        const bool gpu = device.is_cuda();
        std::vector<Case> cases{{18, true, 32, 64, 65536, gpu ? 10 : 2, gpu ? 20 : 5},
                                {18, true, 32, 256, 65536, gpu ? 10 : 1, gpu ? 20 : 3},
                                {50, false, 224, gpu ? 256 : 32, 65536, gpu ? 5 : 1, gpu ? 10 : 3}};
        // Ours and the peer's alternate per configuration (PeerServer, bench/common.h).
        std::unique_ptr<PeerServer> peer;
        if (peer_on) {
            // The peer computes as we do: TF32 as our switch says (PyTorch's own default allows
            // it in cuDNN convolutions, ours does not).
            bool tf32 = false;
#ifdef HPT_WITH_CUDA
            tf32 = cuda_tf32();
#endif
            peer = std::make_unique<PeerServer>(source_dir() + "/tools/peer_step.py",
                                                std::vector<std::string>{"--threads", std::to_string(num_threads()),
                                                                         "--device", device.str(), "--tf32",
                                                                         tf32 ? "1" : "0"});
        }
        struct Row {
            Case c;
            Paired p;
            double bytes_per_step;
            int64_t buckets, early;
        };
        std::vector<Row> rows;
        for (const Case& c : cases) {
            if (!filter.empty() && c.shape().find(filter) == std::string::npos) continue;
            if (lead) {
                std::cerr << "timing the MoCo step " << c.shape();
                if (comm->world() > 1) {
                    std::cerr << " on " << comm->world() << " ranks\n";
                } else {
                    std::cerr << ", ours and PyTorch's alternately\n";
                }
            }
            std::ostringstream req;
            req << "{\"shape\": \"" << c.shape() << "\", \"depth\": " << c.depth
                << ", \"small_stem\": " << (c.small_stem ? "true" : "false") << ", \"image\": " << c.image
                << ", \"batch\": " << c.batch << ", \"queue\": " << c.queue << ", \"warmup\": " << c.warmup
                << ", \"min_reps\": " << c.min_reps << "}";
            Generator g(0);
            OurStep ours(c, g, *comm, device);
            for (int w = 0; w < c.warmup; ++w) ours.run();
            comm->reset_stats();
            Paired pr;
            int64_t steps = 0;
            if (comm->world() > 1) {
                pr.ours = time_ranks(ours, *comm, min_seconds, c.min_reps);
                pr.peer_ms = std::nan("");
                steps = 1 + pr.ours.reps;
            } else {
                pr = time_paired([&] { ours.run(); ++steps; }, peer.get(), req.str(), min_seconds);
            }
            const double bytes = steps ? double(comm->stats().total()) / double(steps) : 0;
            rows.push_back({c, pr, bytes, int64_t(ours.reducer.num_buckets()), ours.reducer.started_during_backward()});
        }
        const std::string err = peer ? peer->error() : "";
        if (!err.empty()) std::cerr << "warning: " << err << "\n";
        if (!lead) return 0;
        Output o(out);
        for (auto& [c, pr, bytes, buckets, early] : rows) {
            const Timing& t = pr.ours;
            JsonLine j;
            j.str("bench", "moco_step").str("shape", c.shape()).str("device", device.is_cuda() ? gpu_name(device.index) : "cpu").str("cpu", cpu_model());
            j.integer("threads", num_threads()).num("ms", t.median_ms).integer("reps", t.reps);
            j.num("images_per_s", double(c.batch) * 1e3 / t.median_ms);
            j.integer("ranks", comm->world()).str("comm", comm->backend()).num("comm_bytes_per_step", bytes);
            j.integer("allreduce_buckets", buckets).integer("buckets_started_in_backward", early);
            if (std::isfinite(pr.peer_ms)) {
                const double pms = pr.peer_ms;
                j.str("peer", pr.peer_fields["peer"]).num("peer_ms", pms).num("peer_images_per_s", double(c.batch) * 1e3 / pms);
                j.num("ratio", pms / t.median_ms);
            } else {
                const char* why = comm->world() > 1 ? "single-process only" : peer_on ? "unavailable" : "disabled";
                j.str("peer", why).raw("peer_ms", "null").raw("ratio", "null");
            }
            j.str("git", git_sha()).str("time", timestamp_utc());
            o.emit(j.line());
        }
        return err.empty() ? 0 : 2;
    } catch (const std::exception& e) {
        std::cerr << "bench_step: " << e.what() << "\n";
        return 1;
    }
}
