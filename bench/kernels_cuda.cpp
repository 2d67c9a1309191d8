// The CUDA part of bench_kernels: conv2d forward and backward (timed separately), batchnorm2d
// forward and backward (training mode, one group) and the im2col-equivalent GEMMs at the layer
// shapes of ResNet-18 with the small-image stem (batch 512, 32x32) and ResNet-50 (batch 256,
// 224x224), then the two MoCo kernels (fused InfoNCE forward+backward at N=256, D=128, K=65536;
// the momentum update over a ResNet-50 MoCo encoder's flat parameters), with PyTorch timing the
// same work on the same GPU (tools/peer_kernels.py: einsum + cat + cross_entropy + backward; a
// per-tensor loop and torch._foreach_lerp_, or _foreach_mul_/_add_ where PyTorch lacks it).
//
// Timing: warm-up (which also runs cuDNN's one-time algorithm search), then repetitions each
// bracketed by CUDA events on the current stream; the median is reported. Every line carries the
// achieved TFLOP/s (conv, GEMM) or GB/s (batchnorm) and the fraction of the H100's peak
// (DESIGN.md section 4: 67 TFLOP/s FP32, 495 TF32, 3.35 TB/s HBM3). Batchnorm bytes are those of a
// two-pass kernel: forward reads x twice and writes y; backward reads dy and x twice and writes dx.
// TF32 and determinism follow hpt's switches (HPT_CUDA_TF32, HPT_DETERMINISTIC); the peer runs with
// cudnn.benchmark = True and the same TF32 setting, and both are stated in every line. The fused
// InfoNCE is the exception: our kernel is timed both ways whatever the switch says (rows
// info_nce_fwd_bwd with tf32 off, info_nce_fwd_bwd_tf32 with it on), and both rows are compared
// with the one peer run, whose TF32 setting is the switch's (field peer_tf32).
#include "bench/kernels_cuda.h"

#include <cstdlib>
#include <cstdint>
#include <algorithm>
#include <functional>
#include <iostream>
#include <map>
#include <regex>
#include <sstream>

#include "bench/common.h"
#include "bench/moco_cases.h"
#include "bench/shapes.h"
#include "engine/core/error.h"

#ifdef HPT_WITH_CUDA
#include <cuda_runtime_api.h>

#include "engine/autograd/grad_mode.h"
#include "engine/core/random.h"
#include "engine/ops/ops.h"
#include "engine/ops/registry.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cuda/runtime.h"
#endif

namespace hpt::bench {

#ifndef HPT_WITH_CUDA

int run_cuda_kernel_benches(const CudaBenchOptions& o, Output&) {
    HPT_THROW("--device ", o.device, ": this build has no CUDA backend (configure with HPT_CUDA=ON)");
}

#else

namespace {

constexpr double kPeakFp32 = 67e12, kPeakTf32 = 495e12, kPeakHbm = 3.35e12;

struct Case {
    std::string bench, shape, layer, peer_json;
    double flops = 0, bytes = 0;  // per repetition; with both, the peak fraction is the flops'
    std::function<void()> run;
    std::string peer_key;  // "bench shape" of the peer's line, when it differs from ours
    int tf32 = -1;         // the TF32 setting the case runs with: 0 off, 1 on, -1 hpt's switch
    std::string key() const { return peer_key.empty() ? bench + " " + shape : peer_key; }
};

std::string conv_json(const std::string& bench, const ConvShape& s) {
    std::ostringstream os;
    os << "{\"bench\": \"" << bench << "\", \"shape\": \"" << s.key() << "\", \"n\": " << s.n << ", \"c\": " << s.c
       << ", \"h\": " << s.h << ", \"w\": " << s.w << ", \"o\": " << s.o << ", \"k\": " << s.k
       << ", \"stride\": " << s.stride << ", \"pad\": " << s.pad << "}";
    return os.str();
}

std::string bn_key(int64_t n, int64_t c, int64_t h, int64_t w) {
    return "n" + std::to_string(n) + "_c" + std::to_string(c) + "_h" + std::to_string(h) + "_w" + std::to_string(w);
}

// The cases of one shape share their input tensors; they are freed once the cases have been timed.
void add_conv_cases(std::vector<Case>& cases, const ConvShape& s, const Device& dev) {
    Conv2dAttrs a;
    a.stride[0] = a.stride[1] = s.stride;
    a.padding[0] = a.padding[1] = s.pad;
    Generator g(7, 1);
    NoGradGuard ng;
    const Tensor x = g.randn({s.n, s.c, s.h, s.w}, DType::f32, dev);
    const Tensor w = g.randn({s.o, s.c, s.k, s.k}, DType::f32, dev) * 0.05;
    const Tensor gy = g.randn({s.n, s.o, s.out_h(), s.out_w()}, DType::f32, dev);
    const Tensor y = empty(gy.shape(), DType::f32, dev);
    const Tensor gx = empty(x.shape(), DType::f32, dev), gw = empty(w.shape(), DType::f32, dev);
    Case f{"conv2d_fwd", s.key(), s.layer, conv_json("conv2d_fwd", s), s.flops_fwd(), 0, {}};
    f.run = [=] { run_kernel(OpId::conv2d, {x, w, Tensor()}, {y}, &a); };
    Case b{"conv2d_bwd", s.key(), s.layer, conv_json("conv2d_bwd", s), 2.0 * s.flops_fwd(), 0, {}};
    b.run = [=] { run_kernel(OpId::conv2d_backward, {gy, x, w}, {gx, gw, Tensor()}, &a); };
    cases.push_back(f);
    cases.push_back(b);
}

void add_bn_cases(std::vector<Case>& cases, int64_t n, int64_t c, int64_t h, int64_t w, const std::string& layer,
                  const Device& dev) {
    const double bytes = double(n * c * h * w) * 4.0;
    const std::string key = bn_key(n, c, h, w);
    auto json = [&](const char* bench) {
        return str("{\"bench\": \"", bench, "\", \"shape\": \"", key, "\", \"n\": ", n, ", \"c\": ", c, ", \"h\": ", h,
                   ", \"w\": ", w, "}");
    };
    BatchNormAttrs a;  // training, momentum 0.1, eps 1e-5, one group
    Generator g(9, 1);
    const Tensor x = g.randn({n, c, h, w}, DType::f32, dev), gy = g.randn({n, c, h, w}, DType::f32, dev);
    const Tensor gamma = ones({c}, DType::f32, dev), beta = zeros({c}, DType::f32, dev);
    const Tensor rm = zeros({c}, DType::f32, dev), rv = ones({c}, DType::f32, dev);
    const Tensor y = empty(x.shape(), DType::f32, dev), mean = empty({1, c}, DType::f32, dev),
                 invstd = empty({1, c}, DType::f32, dev);
    const Tensor gx = empty(x.shape(), DType::f32, dev), gg = empty({c}, DType::f32, dev), gb = empty({c}, DType::f32, dev);
    Case f{"bn_fwd", key, layer, json("bn_fwd"), 0, 3.0 * bytes, {}};
    f.run = [=] { run_kernel(OpId::batchnorm2d, {x, gamma, beta, rm, rv}, {y, mean, invstd}, &a); };
    Case b{"bn_bwd", key, layer, json("bn_bwd"), 0, 5.0 * bytes, {}};
    b.run = [=] { run_kernel(OpId::batchnorm2d_backward, {gy, x, gamma, mean, invstd}, {gx, gg, gb}, &a); };
    f.run();  // mean and invstd for the backward
    cases.push_back(f);
    cases.push_back(b);
}

void add_gemm_case(std::vector<Case>& cases, const GemmShape& s, const Device& dev) {
    Generator g(7, 2);
    const Tensor a = g.randn({s.m, s.k}, DType::f32, dev), b = g.randn({s.k, s.n}, DType::f32, dev);
    const Tensor c = empty({s.m, s.n}, DType::f32, dev);
    Case k{"gemm", s.key(), s.name,
           str("{\"bench\": \"gemm\", \"shape\": \"", s.key(), "\", \"m\": ", s.m, ", \"n\": ", s.n, ", \"k\": ", s.k,
               "}"),
           s.flops(), 0, {}};
    k.run = [=] { run_kernel(OpId::matmul, {a, b}, {c}); };
    cases.push_back(k);
    // Its backward, as the engine's autograd runs it: dA = dC B^T, dB = A^T dC (two GEMMs).
    const Tensor gc = g.randn({s.m, s.n}, DType::f32, dev);
    const Tensor ga = empty({s.m, s.k}, DType::f32, dev), gb = empty({s.k, s.n}, DType::f32, dev);
    Case kb{"gemm_bwd", s.key(), s.name,
            str("{\"bench\": \"gemm_bwd\", \"shape\": \"", s.key(), "\", \"m\": ", s.m, ", \"n\": ", s.n, ", \"k\": ", s.k,
                "}"),
            2.0 * s.flops(), 0, {}, ""};
    kb.run = [=] {
        run_kernel(OpId::matmul, {gc, b.t()}, {ga});
        run_kernel(OpId::matmul, {a.t(), gc}, {gb});
    };
    cases.push_back(kb);
}

// The two MoCo kernels (bench/moco_cases.h); the case object keeps its tensors alive in `run`.
// The partial kernels' block target when HPT_INFONCE_BLOCKS sets it (kernels/cuda/info_nce.cu), so
// that the rows of a sweep over it tell themselves apart.
std::string blocks_note() {
    const char* v = std::getenv("HPT_INFONCE_BLOCKS");
    return v && *v ? std::string(", HPT_INFONCE_BLOCKS=") + v : std::string();
}

// The fused InfoNCE twice: FP32 and TF32 (tensor cores) set for each repetition; the peer is asked
// once (the TF32 row has no request of its own and reads the FP32 row's peer line).
void add_moco_cases(std::vector<Case>& cases, const Device& dev, bool info_nce_fp32, bool info_nce_tf32,
                    bool momentum_wanted) {
    if (info_nce_fp32 || info_nce_tf32) {
        auto c = std::make_shared<InfoNceCase>(dev);
        for (const bool tf32 : {false, true}) {
            if (!(tf32 ? info_nce_tf32 : info_nce_fp32)) continue;
            const std::string peer_request = tf32 && info_nce_fp32 ? "" : InfoNceCase::peer_request();
            Case x{tf32 ? "info_nce_fwd_bwd_tf32" : "info_nce_fwd_bwd", InfoNceCase::shape(),
                   (tf32 ? std::string("MoCo loss, T=0.2, TF32 tensor cores") +
                               (cuda_info_nce_pipelined() ? ", pipelined (cp.async)" : ", HPT_INFONCE_PIPELINE=0 (tiles loaded in turn)")
                         : std::string("MoCo loss, T=0.2, FP32")) + blocks_note(),
                   peer_request,
                   InfoNceCase::flops(), InfoNceCase::bytes(),
                   [c, tf32] {
                       struct Scope {
                           bool was = cuda_tf32();
                           explicit Scope(bool on) { set_cuda_tf32(on); }
                           ~Scope() { set_cuda_tf32(was); }
                       } scope(tf32);
                       c->step();
                   },
                   "info_nce_fwd_bwd " + InfoNceCase::shape()};
            x.tf32 = tf32 ? 1 : 0;
            cases.push_back(x);
        }
    }
    if (momentum_wanted) {
        auto c = std::make_shared<MomentumCase>(dev);
        for (const std::string variant : {"loop", "foreach"}) {
            Case x{"momentum_update", c->shape(), MomentumCase::layer(variant), MomentumCase::peer_request(variant), 0,
                   c->bytes(), [c] { c->step(); }, MomentumCase::peer_bench(variant) + " resnet50_mlp"};
            cases.push_back(x);
        }
    }
}

struct Net {
    std::string name;
    std::vector<ConvShape> convs;
    int64_t feat;
};

}  // namespace

// Each sample is kBatch calls back to back between two events, divided by kBatch, as in
// tools/peer_kernels.py: with one call per pair of events, the peer's Python dispatch of a small
// kernel ran on an idle stream inside the window and was timed as GPU time (gemm_bwd read 3.8-5.7x
// where the kernel took a fifth of the peer's 0.17 ms).
constexpr int kBatch = 8;

Timing time_cuda(const std::function<void()>& fn, double min_seconds) {
    for (int i = 0; i < 3; ++i) fn();
    cuda::synchronize();
    std::vector<double> ms;
    double total = 0;
    cuda::Event start, stop;
    while (ms.size() < 1000 && (ms.size() < 10 || total < min_seconds * 1e3)) {
        start.record();
        for (int i = 0; i < kBatch; ++i) fn();
        stop.record();
        stop.synchronize();
        ms.push_back(stop.elapsed_ms_since(start) / kBatch);
        total += ms.back() * kBatch;
    }
    cuda::synchronize();  // raises any deferred device error
    std::sort(ms.begin(), ms.end());
    Timing t;
    t.reps = int(ms.size());
    t.median_ms = ms.size() % 2 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
    t.min_ms = ms.front();
    t.max_ms = ms.back();
    return t;
}

int run_cuda_kernel_benches(const CudaBenchOptions& o, Output& out) {
    const Device dev = Device::parse(o.device);
    HPT_CHECK(dev.is_cuda(), "bench_kernels CUDA part given device ", o.device);
    HPT_CHECK(cuda_device_count() > dev.index, "--device ", o.device, ": no such CUDA device (",
              cuda_device_count(), " visible; this machine may have no GPU)");
    cuda::DeviceGuard guard(dev.index);
    const std::regex re(o.filter);
    auto want = [&](const std::string& bench, const std::string& key) { return std::regex_search(bench + " " + key, re); };

    std::vector<Net> nets;
    if (o.nets == "all" || o.nets == "resnet18") nets.push_back({"resnet18", resnet18_small_convs(o.batch ? o.batch : 512), 512});
    if (o.nets == "all" || o.nets == "resnet50") nets.push_back({"resnet50", resnet50_convs(o.batch ? o.batch : 256), 2048});
    HPT_CHECK(!nets.empty(), "--nets ", o.nets, " (expected resnet18, resnet50 or all)");

    const bool tf32 = cuda_tf32();
    const std::string gpu = gpu_name(dev.index);
    std::vector<std::pair<Case, Timing>> done;
    std::string peer_in = "[";
    auto time_case = [&](Case c, const std::string& net) {
        std::cerr << "timing " << c.bench << " " << c.shape << " (" << net << " " << c.layer << ")\n";
        c.layer = net + " " + c.layer;
        const Timing t = time_cuda(c.run, o.min_seconds);
        c.run = nullptr;  // frees the case's tensors
        if (!c.peer_json.empty()) peer_in += (peer_in.size() > 1 ? ", " : "") + c.peer_json;
        done.emplace_back(std::move(c), t);
    };
    for (const Net& net : nets) {
        std::map<std::string, bool> seen_bn;
        for (const ConvShape& s : net.convs) {
            std::vector<Case> cases;
            if (want("conv2d_fwd", s.key()) || want("conv2d_bwd", s.key())) add_conv_cases(cases, s, dev);
            for (Case& c : cases)
                if (want(c.bench, c.shape)) time_case(std::move(c), net.name);
            const std::string bk = bn_key(s.n, s.o, s.out_h(), s.out_w());
            if (!seen_bn.count(bk) && (want("bn_fwd", bk) || want("bn_bwd", bk))) {
                seen_bn[bk] = true;
                std::vector<Case> bn;
                add_bn_cases(bn, s.n, s.o, s.out_h(), s.out_w(), s.layer + " (bn after)", dev);
                for (Case& c : bn)
                    if (want(c.bench, c.shape)) time_case(std::move(c), net.name);
            }
        }
        for (const GemmShape& s : gemms_for(net.convs, net.convs.front().n, net.feat)) {
            if (!want("gemm", s.key()) && !want("gemm_bwd", s.key())) continue;
            std::vector<Case> cases;
            add_gemm_case(cases, s, dev);
            for (Case& c : cases)
                if (want(c.bench, c.shape)) time_case(std::move(c), net.name);
        }
    }
    {
        std::vector<Case> moco;
        add_moco_cases(moco, dev, want("info_nce_fwd_bwd", InfoNceCase::shape()),
                       want("info_nce_fwd_bwd_tf32", InfoNceCase::shape()), want("momentum_update", "resnet50_mlp"));
        for (Case& c : moco) time_case(std::move(c), "moco");
    }
    peer_in += "]";

    std::map<std::string, std::map<std::string, std::string>> peer;
    std::string peer_name = "none", peer_error;
    if (o.peer && !done.empty()) {
        std::cerr << "running the PyTorch peer (tools/peer_kernels.py) on the same shapes\n";
        const auto lines = run_peer(source_dir() + "/tools/peer_kernels.py",
                                    {"--device", dev.str(), "--tf32", tf32 ? "1" : "0", "--min-time",
                                     std::to_string(o.min_seconds)},
                                    peer_in, peer_error);
        for (const std::string& l : lines) {
            auto m = parse_flat_json(l);
            if (m.count("peer")) peer_name = m["peer"];
            peer[m["bench"] + " " + m["shape"]] = m;
        }
        if (!peer_error.empty()) std::cerr << "warning: " << peer_error << "\n";
    }

    for (const auto& [c, t] : done) {
        JsonLine j;
        j.str("bench", c.bench).str("shape", c.shape).str("layer", c.layer).str("device", dev.str());
        j.str("gpu", gpu).str("cpu", cpu_model()).integer("threads", num_threads());
        const bool row_tf32 = c.tf32 < 0 ? tf32 : c.tf32 == 1;
        j.str("tf32", row_tf32 ? "on" : "off").str("deterministic", cuda_deterministic() ? "on" : "off");
        j.num("ms", t.median_ms).num("min_ms", t.min_ms).integer("reps", t.reps);
        const double s = t.median_ms * 1e-3;
        if (c.flops > 0 && c.bytes > 0) j.num("gbps", c.bytes / s * 1e-9);
        if (c.flops > 0) {
            const bool tensor_cores = row_tf32;
            const double peak = tensor_cores ? kPeakTf32 : kPeakFp32;
            j.num("gflops", c.flops / s * 1e-9).num("tflops", c.flops / s * 1e-12).num("peak_fraction", c.flops / s / peak);
            j.str("peak", tensor_cores ? "495 TFLOP/s TF32 (H100)" : "67 TFLOP/s FP32 (H100)");
        } else {
            j.num("gbps", c.bytes / s * 1e-9).num("peak_fraction", c.bytes / s / kPeakHbm);
            j.str("peak", "3.35 TB/s HBM3 (H100)");
        }
        auto it = peer.find(c.key());
        if (it != peer.end() && it->second.count("ms")) {
            const double pms = std::stod(it->second.at("ms"));
            j.str("peer", peer_name).str("peer_tf32", tf32 ? "on" : "off").num("peer_ms", pms).num("ratio", pms / t.median_ms);
        } else {
            j.str("peer", o.peer ? "unavailable" : "disabled").raw("peer_ms", "null").raw("ratio", "null");
        }
        j.str("git", git_sha()).str("time", timestamp_utc());
        out.emit(j.line());
    }
    return peer_error.empty() ? 0 : 2;
}

#endif  // HPT_WITH_CUDA

}  // namespace hpt::bench
