// bench_kernels: conv2d forward+backward and GEMMs at the layer shapes of our networks, timed next
// to PyTorch running the same shapes in the same run (tools/peer_kernels.py). One JSON line per
// (bench, shape) with our time, PyTorch's, and ratio = peer_ms / ms (above 1: we are faster).
// --device cuda runs the CUDA part instead (bench/kernels_cuda.cpp). On either device the last
// rows are the two-view augmentation against torchvision (bench/augment_bench.cpp).
#include <cstdint>
#include <cmath>
#include <cstring>
#include <memory>
#include <iostream>
#include <map>
#include <regex>
#include <sstream>

#include "bench/augment_bench.h"
#include "bench/common.h"
#include "bench/kernels_cuda.h"
#include "bench/moco_cases.h"
#include "bench/shapes.h"
#include "engine/autograd/grad_mode.h"
#include "engine/core/random.h"
#include "engine/ops/ops.h"
#include "models/resnet.h"
#include "ssl/ops.h"
#include "kernels/cpu/parallel.h"

using namespace hpt;
using namespace hpt::bench;

namespace {

struct Options : CommonArgs {
    int64_t batch = 64;
    bool batch_set = false;
    std::string nets = "all";
    std::string policy = "full", data;  // augmentation rows
};

const char* kUsage =
    "usage: bench_kernels [options]\n"
    "  --device D            cpu (default), cuda or cuda:N\n"
    "  --batch N             batch of the ResNet-18 shapes (default 64, 32x32 images); on CUDA\n"
    "                        the batch of every network (default 512 for ResNet-18, 256 for ResNet-50)\n"
    "  --nets NAME           CUDA only: resnet18, resnet50 or all (default)\n"
    "  --policy NAME         augmentation rows: full (default; the only one with a torchvision peer),\n"
    "                        no_gray, no_color, crop_blur or crop_only\n"
    "  --data PATH           augmentation rows' images: an RGB dataset (default\n"
    "                        ../shared/datasets/retinamnist; random images when that is absent)\n"
    "  --threads N           CPU threads for us and for PyTorch (default: all cores)\n"
    "  --filter REGEX        only benches whose 'bench shape' matches (benches: conv2d_fwd_bwd, gemm,\n"
    "                        info_nce_fwd_bwd, momentum_update, augment_two_views; on CUDA conv2d_fwd,\n"
    "                        conv2d_bwd, bn_fwd, bn_bwd, gemm, gemm_bwd, info_nce_fwd_bwd(_tf32))\n"
    "  --min-time S          seconds of timing per shape and side, in 3 alternating rounds (default 1.0)\n"
    "  --out FILE            also append the JSON lines to FILE\n"
    "  --no-peer             do not run PyTorch\n";

struct Result {
    std::string bench, shape, layer;
    Timing t;
    double flops;
    double peer_ms;
    double bytes = 0;  // memory traffic, for GB/s
};

// conv2d forward + backward through the op API and autograd, as training runs it.
struct ConvCase {
    Tensor x, w, gy;
    Conv2dAttrs a;
    explicit ConvCase(const ConvShape& s) {
        Generator g(7, 1);
        x = g.randn({s.n, s.c, s.h, s.w}).requires_grad_();
        w = (g.randn({s.o, s.c, s.k, s.k}) * 0.05).detach().requires_grad_();
        gy = g.randn({s.n, s.o, s.out_h(), s.out_w()});
        a.stride[0] = a.stride[1] = s.stride;
        a.padding[0] = a.padding[1] = s.pad;
    }
    void step() {
        x.set_grad(Tensor());
        w.set_grad(Tensor());
        conv2d(x, w, Tensor(), a).backward(gy);
    }
};

struct GemmCase {
    Tensor a, b;
    explicit GemmCase(const GemmShape& s) {
        Generator g(7, 2);
        a = g.randn({s.m, s.k});
        b = g.randn({s.k, s.n});
    }
    void step() {
        NoGradGuard ng;
        matmul(a, b);
    }
};

std::string conv_json(const ConvShape& s) {
    std::ostringstream os;
    os << "{\"bench\": \"conv2d_fwd_bwd\", \"shape\": \"" << s.key() << "\", \"n\": " << s.n << ", \"c\": " << s.c
       << ", \"h\": " << s.h << ", \"w\": " << s.w << ", \"o\": " << s.o << ", \"k\": " << s.k
       << ", \"stride\": " << s.stride << ", \"pad\": " << s.pad << "}";
    return os.str();
}

std::string gemm_json(const GemmShape& s) {
    std::ostringstream os;
    os << "{\"bench\": \"gemm\", \"shape\": \"" << s.key() << "\", \"m\": " << s.m << ", \"n\": " << s.n
       << ", \"k\": " << s.k << "}";
    return os.str();
}

}  // namespace

int main(int argc, char** argv) {
    try {
        Options o;
        const bool go = parse_args(argc, argv, kUsage, o, [&](const std::string& a, const auto& value) {
            if (a == "--batch") {
                o.batch = std::stoll(value());
                o.batch_set = true;
            } else if (a == "--nets") {
                o.nets = value();
            } else if (a == "--policy") {
                o.policy = value();
            } else if (a == "--data") {
                o.data = value();
            } else {
                return false;
            }
            return true;
        });
        if (!go) return 0;
        if (o.threads > 0) set_num_threads(o.threads);
        Output out(o.out);
        // The augmentation rows come last on either device: their torchvision peer is the slowest part.
        auto augmentation = [&]() {
            if (!augment_bench_wanted(o.filter)) return 0;
            AugmentBenchOptions a;
            a.device = o.device;
            a.filter = o.filter;
            a.policy = o.policy;
            a.data = o.data;
            a.min_seconds = o.min_seconds;
            a.peer = o.peer;
            return run_augment_benches(a, out);
        };
        if (o.device != "cpu") {
            CudaBenchOptions c;
            c.device = o.device;
            c.filter = o.filter;
            c.batch = o.batch_set ? o.batch : 0;
            c.nets = o.nets;
            c.min_seconds = o.min_seconds;
            c.peer = o.peer;
            const int rc = run_cuda_kernel_benches(c, out);
            return std::max(rc, augmentation());
        }
        const int threads = num_threads();
        const std::regex re(o.filter);
        const auto convs = resnet18_small_convs(o.batch);
        const auto gemms = gemms_for(convs, o.batch, 512);

        // Ours and PyTorch's alternate shape by shape (bench/common.h, PeerServer), started with
        // the first shape the filter selects.
        std::unique_ptr<PeerServer> peer;
        std::vector<Result> results;
        std::string peer_name = "none";
        auto run = [&](Result r, const std::function<void()>& fn, const std::string& req) {
            if (o.peer && !peer) {
                peer = std::make_unique<PeerServer>(source_dir() + "/tools/peer_kernels.py",
                                                    std::vector<std::string>{"--device", "cpu", "--threads",
                                                                             std::to_string(threads)});
            }
            std::cerr << "timing " << r.bench << " " << r.shape << " (" << r.layer << "), ours and PyTorch's alternately\n";
            const Paired p = time_paired(fn, peer.get(), req, o.min_seconds);
            r.t = p.ours;
            r.peer_ms = p.peer_ms;
            if (p.peer_fields.count("peer")) peer_name = p.peer_fields.at("peer");
            results.push_back(r);
        };
        auto want = [&](const std::string& bench, const std::string& key) {
            return std::regex_search(bench + " " + key, re);
        };
        for (const ConvShape& s : convs) {
            if (!want("conv2d_fwd_bwd", s.key())) continue;
            ConvCase c(s);
            run({"conv2d_fwd_bwd", s.key(), s.layer, {}, 3.0 * s.flops_fwd(), 0}, [&] { c.step(); }, conv_json(s));
        }
        for (const GemmShape& s : gemms) {
            if (!want("gemm", s.key())) continue;
            GemmCase c(s);
            run({"gemm", s.key(), s.name, {}, s.flops(), 0}, [&] { c.step(); }, gemm_json(s));
        }
        if (want("info_nce_fwd_bwd", InfoNceCase::shape())) {
            InfoNceCase c;
            run({"info_nce_fwd_bwd", InfoNceCase::shape(), "MoCo loss, T=0.2", {}, InfoNceCase::flops(), 0},
                [&] { c.step(); }, InfoNceCase::peer_request());
            results.back().bytes = InfoNceCase::bytes();
        }
        if (want("momentum_update", "resnet50_mlp")) {
            MomentumCase c;
            for (const std::string variant : {"loop", "foreach"}) {
                run({"momentum_update", c.shape(), MomentumCase::layer(variant), {}, 0, 0}, [&] { c.step(); },
                    MomentumCase::peer_request(variant));
                results.back().bytes = c.bytes();
            }
        }
        const std::string peer_error = peer ? peer->error() : "";
        if (!peer_error.empty()) std::cerr << "warning: " << peer_error << "\n";

        for (const Result& r : results) {
            JsonLine j;
            j.str("bench", r.bench).str("shape", r.shape).str("layer", r.layer).str("device", "cpu");
            j.str("cpu", cpu_model()).integer("threads", threads);
            j.num("ms", r.t.median_ms).num("min_ms", r.t.min_ms).integer("reps", r.t.reps);
            if (r.flops > 0) j.num("gflops", r.flops / (r.t.median_ms * 1e6));
            if (r.bytes > 0) j.num("gb_per_s", r.bytes / (r.t.median_ms * 1e6));
            if (std::isfinite(r.peer_ms) && r.peer_ms > 0) {
                j.str("peer", peer_name).num("peer_ms", r.peer_ms).num("ratio", r.peer_ms / r.t.median_ms);
            } else {
                j.str("peer", o.peer ? "unavailable" : "disabled").raw("peer_ms", "null").raw("ratio", "null");
            }
            j.str("git", git_sha()).str("time", timestamp_utc());
            out.emit(j.line());
        }
        return std::max(peer_error.empty() ? 0 : 2, augmentation());
    } catch (const std::exception& e) {
        std::cerr << "bench_kernels: " << e.what() << "\n";
        return 1;
    }
}
