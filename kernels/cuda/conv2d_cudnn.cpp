// CUDA conv2d and conv2d_backward through cuDNN's convolution API (cudnnConvolutionForward,
// ...BackwardData, ...BackwardFilter). Registered only when cuDNN is built in: without it,
// supports(conv2d, cuda) is false and the dispatcher names the missing kernel. Bias forward and
// backward are our own kernels (conv2d_bias.cu).
//
// Algorithm choice: measured, once per (shape, dtype, parameters, direction, TF32, determinism,
// device) and cached. cudnnFind*AlgorithmEx runs every algorithm on our own buffers with the
// capped workspace and returns them fastest first; measuring picks the truly fastest algorithm
// for the shape and is what PyTorch's peer does with cudnn.benchmark = True, at the cost of a
// one-time search per shape (hundreds of ms). HPT_CUDNN_FIND=0 uses the Get_v7 heuristics instead
// (no search, sometimes slower algorithms).
//
// Candidates are filtered: status success, workspace within the cap (1 GiB, or
// HPT_CUDNN_WORKSPACE_MB), deterministic only in deterministic mode (set_cuda_deterministic or
// HPT_DETERMINISTIC=1); f32 runs on FMA math (no TF32) unless TF32 is on. When the workspace of
// the best candidate cannot be allocated, the next one is used and the fallback is logged and
// counted (cudnn_fallback_count()), never silent.
//
// Pointwise convolutions (1x1, stride 1, no padding, one group) have one more candidate in every
// search: the same product as batched cuBLAS GEMMs (kernels/pointwise_conv.h; the weight gradient
// adds per-sample products into partial sums and sums those with one more GEMM), timed on the
// same buffers and kept where it is faster. On the H100, cuDNN's legacy algorithms took 1.1x to
// 1.6x PyTorch's time on ResNet-50's 1x1 convolutions (bench/results/h100/). HPT_CONV_GEMM /
// set_cuda_conv_gemm (kernels/cuda/runtime.h) can force it on or off.
#ifdef HPT_WITH_CUDNN

// The legacy convolution API is marked deprecated in cuDNN 9 but remains supported; it is the
// documented way to call convolutions without building cuDNN graphs.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#include <cstdint>
#include <cudnn.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <mutex>
#include <vector>

#include "engine/ops/attrs.h"
#include "engine/ops/registry.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/conv2d_bias.h"
#include "kernels/cuda/copy.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/kernel_entry.h"
#include "kernels/cuda/runtime.h"
#include "kernels/pointwise_conv.h"

namespace hpt::cuda {
namespace {

enum Dir { kForward = 0, kBackwardData = 1, kBackwardFilter = 2 };
const char* const kDirName[] = {"forward", "backward data", "backward filter"};

cudnnHandle_t dnn() {
    static std::mutex mu;
    static std::vector<cudnnHandle_t>* handles = new std::vector<cudnnHandle_t>(size_t(cuda_device_count()), nullptr);
    const int d = current_device();
    cudnnHandle_t h;
    {
        std::lock_guard<std::mutex> lock(mu);
        cudnnHandle_t& slot = (*handles)[size_t(d)];
        if (!slot) HPT_CUDA_CHECK(cudnnCreate(&slot));
        h = slot;
    }
    HPT_CUDA_CHECK(cudnnSetStream(h, current_stream()));
    return h;
}

cudnnDataType_t dnn_type(DType t) {
    HPT_CHECK(t == DType::f32 || t == DType::f64, "conv2d on CUDA takes f32 or f64, got ", dtype_name(t));
    return t == DType::f32 ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
}

int as_int(int64_t v) {
    HPT_CHECK(v >= 0 && v <= INT32_MAX, "conv2d on CUDA: size ", v, " exceeds cuDNN's 32-bit range");
    return int(v);
}

// ---- RAII descriptors

struct TensorDesc {
    cudnnTensorDescriptor_t d = nullptr;
    explicit TensorDesc(const Tensor& t) {
        HPT_CUDA_CHECK(cudnnCreateTensorDescriptor(&d));
        HPT_CUDA_CHECK(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, dnn_type(t.dtype()), as_int(t.size(0)),
                                                  as_int(t.size(1)), as_int(t.size(2)), as_int(t.size(3))));
    }
    ~TensorDesc() { HPT_CUDA_CHECK_LOG(cudnnDestroyTensorDescriptor(d)); }
};

struct FilterDesc {
    cudnnFilterDescriptor_t d = nullptr;
    explicit FilterDesc(const Tensor& w) {
        HPT_CUDA_CHECK(cudnnCreateFilterDescriptor(&d));
        HPT_CUDA_CHECK(cudnnSetFilter4dDescriptor(d, dnn_type(w.dtype()), CUDNN_TENSOR_NCHW, as_int(w.size(0)),
                                                  as_int(w.size(1)), as_int(w.size(2)), as_int(w.size(3))));
    }
    ~FilterDesc() { HPT_CUDA_CHECK_LOG(cudnnDestroyFilterDescriptor(d)); }
};

// f32 without TF32 must run on FMA kernels: cuDNN's default math allows TF32 on Ampere and later.
cudnnMathType_t wanted_math(DType t) {
    return t == DType::f32 && !cuda_tf32() ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
}

struct ConvDesc {
    cudnnConvolutionDescriptor_t d = nullptr;
    ConvDesc(const Conv2dAttrs& p, DType t) {
        HPT_CUDA_CHECK(cudnnCreateConvolutionDescriptor(&d));
        HPT_CUDA_CHECK(cudnnSetConvolution2dDescriptor(d, as_int(p.padding[0]), as_int(p.padding[1]),
                                                       as_int(p.stride[0]), as_int(p.stride[1]),
                                                       as_int(p.dilation[0]), as_int(p.dilation[1]),
                                                       CUDNN_CROSS_CORRELATION, dnn_type(t)));
        HPT_CUDA_CHECK(cudnnSetConvolutionGroupCount(d, as_int(p.groups)));
        HPT_CUDA_CHECK(cudnnSetConvolutionMathType(d, wanted_math(t)));
    }
    ~ConvDesc() { HPT_CUDA_CHECK_LOG(cudnnDestroyConvolutionDescriptor(d)); }
};

// cuDNN's alpha = 1 and beta = 0, as float for f32 data and as double for f64.
struct Scaling {
    bool f32;
    float f[2] = {1.f, 0.f};
    double d[2] = {1.0, 0.0};
    explicit Scaling(DType t) : f32(t == DType::f32) {}
    const void* one() const { return f32 ? static_cast<const void*>(&f[0]) : &d[0]; }
    const void* zero() const { return f32 ? static_cast<const void*>(&f[1]) : &d[1]; }
};

// Everything one convolution call needs.
struct Problem {
    Tensor x, w, y;  // input, weight, output (or their gradients, by direction)
    Conv2dAttrs p;
    TensorDesc xd, yd;
    FilterDesc wd;
    ConvDesc cd;
    Problem(const Tensor& x_, const Tensor& w_, const Tensor& y_, const Conv2dAttrs& p_)
        : x(x_), w(w_), y(y_), p(p_), xd(x_), yd(y_), wd(w_), cd(p_, x_.dtype()) {}
};

// ---- algorithm search and cache

struct Algo {
    int algo;  // a cuDNN algorithm, or kGemmAlgo
    size_t workspace;
    cudnnMathType_t math;
    float ms;  // measured in the search (Find only)
};

// The batched-GEMM formulation of a pointwise convolution (kernels/pointwise_conv.h).
constexpr int kGemmAlgo = -1;

std::string cache_key(Dir dir, const Problem& pr) {
    const Conv2dAttrs& p = pr.p;
    return str(dir, ' ', current_device(), ' ', dtype_name(pr.x.dtype()), shape_str(pr.x.shape()), shape_str(pr.w.shape()),
               ' ', p.stride[0], ',', p.stride[1], ',', p.padding[0], ',', p.padding[1], ',', p.dilation[0], ',',
               p.dilation[1], ',', p.groups, " tf32=", cuda_tf32(), " det=", cuda_deterministic(),
               " exact=", cuda_exact_conv(), " gemm=", int(cuda_conv_gemm()));
}

bool use_find() {
    static const bool on = [] {
        const char* v = std::getenv("HPT_CUDNN_FIND");
        return !(v && std::string(v) == "0");
    }();
    return on;
}

// FFT and Winograd algorithms: left out under cuda_exact_conv() (kernels/cuda/runtime.h).
bool transform_based(cudnnConvolutionFwdAlgo_t a) {
    return a == CUDNN_CONVOLUTION_FWD_ALGO_FFT || a == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
           a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
}
bool transform_based(cudnnConvolutionBwdDataAlgo_t a) {
    return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING ||
           a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
}
bool transform_based(cudnnConvolutionBwdFilterAlgo_t a) {
    return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING ||
           a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
}

// Keeps the usable results (fastest first) of a Find or Get_v7 call.
template <class Perf>
std::vector<Algo> usable(const Perf* perf, int n, DType t) {
    std::vector<Algo> out;
    const cudnnMathType_t math = wanted_math(t);
    for (int i = 0; i < n; ++i) {
        const Perf& r = perf[i];
        if (r.status != CUDNN_STATUS_SUCCESS || r.memory > cudnn_workspace_limit()) continue;
        if (cuda_deterministic() && r.determinism != CUDNN_DETERMINISTIC) continue;
        if (cuda_exact_conv() && transform_based(r.algo)) continue;
        // The search ran with FMA math on the descriptor; running with it too rules out TF32
        // whatever math type the result reports.
        out.push_back({int(r.algo), r.memory, math == CUDNN_FMA_MATH ? CUDNN_FMA_MATH : r.mathType, r.time});
    }
    return out;
}

// A workspace for the search: the cap, halved until the allocator can provide it.
Tensor search_workspace(const Device& dev) {
    size_t bytes = cudnn_workspace_limit();
    while (true) {
        try {
            return empty({int64_t(bytes)}, DType::u8, dev);
        } catch (const OutOfMemory&) {
            if (bytes < (size_t(1) << 20)) return Tensor();
            std::cerr << "hpt: cuDNN algorithm search: cannot allocate a " << (bytes >> 20)
                      << " MiB workspace; searching with " << (bytes >> 21) << " MiB" << std::endl;
            bytes /= 2;
        }
    }
}

std::vector<Algo> search(Dir dir, Problem& pr) {
    cudnnHandle_t h = dnn();
    const DType t = pr.x.dtype();
    if (!use_find()) {
        int n = 0;
        if (dir == kForward) {
            cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
            HPT_CUDA_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, pr.xd.d, pr.wd.d, pr.cd.d, pr.yd.d,
                                                                  CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf));
            return usable(perf, n, t);
        }
        if (dir == kBackwardData) {
            cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
            HPT_CUDA_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, pr.wd.d, pr.yd.d, pr.cd.d, pr.xd.d,
                                                                       CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf));
            return usable(perf, n, t);
        }
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        HPT_CUDA_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, pr.xd.d, pr.yd.d, pr.cd.d, pr.wd.d,
                                                                     CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf));
        return usable(perf, n, t);
    }
    const Tensor ws = search_workspace(pr.x.device());
    void* wp = ws.defined() ? ws.data_ptr() : nullptr;
    const size_t wn = ws.defined() ? size_t(ws.numel()) : 0;
    int n = 0;
    if (dir == kForward) {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        HPT_CUDA_CHECK(cudnnFindConvolutionForwardAlgorithmEx(h, pr.xd.d, pr.x.data_ptr(), pr.wd.d, pr.w.data_ptr(),
                                                              pr.cd.d, pr.yd.d, pr.y.data_ptr(),
                                                              CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf, wp, wn));
        return usable(perf, n, t);
    }
    if (dir == kBackwardData) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        HPT_CUDA_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(
            h, pr.wd.d, pr.w.data_ptr(), pr.yd.d, pr.y.data_ptr(), pr.cd.d, pr.xd.d, pr.x.data_ptr(),
            CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf, wp, wn));
        return usable(perf, n, t);
    }
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    HPT_CUDA_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(
        h, pr.xd.d, pr.x.data_ptr(), pr.yd.d, pr.y.data_ptr(), pr.cd.d, pr.wd.d, pr.w.data_ptr(),
        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf, wp, wn));
    return usable(perf, n, t);
}

bool gemm_applies(const Problem& pr) {
    return cuda_conv_gemm() != ConvGemm::never && is_pointwise_conv(pr.p, pr.w.size(2), pr.w.size(3));
}

// Room for the weight gradient's partial sums (kernels/pointwise_conv.h): every sample its own on
// ResNet-50's early layers, fewer (more rounds) for the widest layers.
constexpr int64_t kPartialBudgetBytes = int64_t(64) << 20;

template <class T>
void run_gemm_as(const BatchedGemm& g, const T* a, const T* b, T beta, T* c) {
    gemm<T>(g.ta, g.tb, g.M, g.N, g.K, T(1), a, g.lda, g.sa, b, g.ldb, g.sb, beta, c, g.ldc, g.sc, g.batch);
}

template <class T>
void run_weight_grad(const Problem& pr, int64_t n, int64_t c, int64_t o, int64_t hw) {
    const PointwiseWeightGrad w = pointwise_weight_grad_gemm(n, c, o, hw, kPartialBudgetBytes, int64_t(sizeof(T)));
    // Both allocated before any GEMM runs: when either fails, nothing has been written yet and the
    // caller falls back to cuDNN.
    const Tensor partials = w.parts > 1 ? empty({w.parts, o, c}, pr.w.dtype(), pr.w.device()) : Tensor();
    const Tensor ones = w.parts > 1 ? full({w.parts}, 1.0, pr.w.dtype(), pr.w.device()) : Tensor();
    T* sums = w.parts > 1 ? partials.data<T>() : pr.w.data<T>();
    for (int64_t r = 0; r < w.rounds; ++r) {
        BatchedGemm g = w.round;
        g.batch = w.batch(r);
        run_gemm_as<T>(g, pr.y.data<T>() + w.a_offset(r), pr.x.data<T>() + w.b_offset(r), T(r == 0 ? 0 : 1), sums);
    }
    if (w.parts > 1) run_gemm_as<T>(w.reduce, ones.data<T>(), partials.data<T>(), T(0), pr.w.data<T>());
}

// Forward: y = w x per sample; backward data: x (the input gradient) = w^T y (the output
// gradient); backward filter: w (the weight gradient) = sum over samples of y x^T. The Problem's
// tensors are contiguous NCHW of one dtype, f32 or f64 (dnn_type checked it).
template <class T>
void run_gemm_typed(Dir dir, const Problem& pr) {
    const int64_t n = pr.x.size(0), c = pr.x.size(1), o = pr.w.size(0), hw = pr.x.size(2) * pr.x.size(3);
    if (dir == kForward)
        return run_gemm_as<T>(pointwise_forward_gemm(n, c, o, hw), pr.w.data<T>(), pr.x.data<T>(), T(0), pr.y.data<T>());
    if (dir == kBackwardData)
        return run_gemm_as<T>(pointwise_backward_data_gemm(n, c, o, hw), pr.w.data<T>(), pr.y.data<T>(), T(0),
                              pr.x.data<T>());
    run_weight_grad<T>(pr, n, c, o, hw);
}

void run_gemm(Dir dir, const Problem& pr) {
    if (pr.x.dtype() == DType::f32) return run_gemm_typed<float>(dir, pr);
    run_gemm_typed<double>(dir, pr);
}

// Its time in the search: the mean of three runs after a warm-up one.
float time_gemm(Dir dir, const Problem& pr) {
    run_gemm(dir, pr);
    Event start, stop;
    start.record();
    for (int i = 0; i < 3; ++i) run_gemm(dir, pr);
    stop.record();
    stop.synchronize();
    return stop.elapsed_ms_since(start) / 3;
}

// cuDNN's usable algorithms and, for pointwise convolutions, the GEMM, fastest first. A forced
// GEMM comes alone (no search); when it cannot allocate its partial sums, the OutOfMemory stands.
// A GEMM that cannot allocate them while it is timed is left out of the search, whose result is
// cached: cuDNN's algorithms still run that convolution.
std::vector<Algo> search_with_gemm(Dir dir, Problem& pr) {
    if (!gemm_applies(pr)) return search(dir, pr);
    Algo g{kGemmAlgo, 0, wanted_math(pr.x.dtype()), 0.f};
    if (cuda_conv_gemm() == ConvGemm::always) return {g};
    std::vector<Algo> found = search(dir, pr);
    if (use_find()) {
        try {
            g.ms = time_gemm(dir, pr);
        } catch (const OutOfMemory& e) {
            note_cudnn_fallback();
            std::cerr << "hpt: conv2d " << kDirName[dir] << " as batched GEMMs left out of the search: " << e.what()
                      << std::endl;
            return found;
        }
        found.insert(std::find_if(found.begin(), found.end(), [&](const Algo& a) { return a.ms > g.ms; }), g);
    }
    return found;
}

std::vector<Algo> candidates(Dir dir, Problem& pr) {
    static std::mutex mu;
    static auto* cache = new std::map<std::string, std::vector<Algo>>();
    const std::string key = cache_key(dir, pr);
    {
        std::lock_guard<std::mutex> lock(mu);
        auto it = cache->find(key);
        if (it != cache->end()) return it->second;
    }
    std::vector<Algo> found = search_with_gemm(dir, pr);
    HPT_CHECK(!found.empty(), "conv2d ", kDirName[dir], " on cuDNN: no algorithm fits the request (",
              cuda_deterministic() ? "deterministic only, " : "", "workspace cap ", cudnn_workspace_limit() >> 20,
              " MiB, HPT_CUDNN_WORKSPACE_MB) for ", key);
    std::lock_guard<std::mutex> lock(mu);
    (*cache)[key] = found;
    return found;
}

// Runs the first candidate whose workspace can be allocated; later ones are logged fallbacks.
template <class Run>
void run_with_fallback(Dir dir, Problem& pr, const Run& run) {
    const std::vector<Algo> algos = candidates(dir, pr);
    for (size_t i = 0; i < algos.size(); ++i) {
        const Algo& a = algos[i];
        if (a.algo == kGemmAlgo) {
            try {
                return run_gemm(dir, pr);
            } catch (const OutOfMemory& e) {  // the weight gradient's partial sums
                note_cudnn_fallback();
                std::cerr << "hpt: conv2d " << kDirName[dir] << " as batched GEMMs: " << e.what() << "; "
                          << (i + 1 == algos.size() ? std::string("no algorithm left")
                                                    : "falling back to cuDNN algorithm " + std::to_string(algos[i + 1].algo))
                          << std::endl;
                continue;
            }
        }
        Tensor ws;
        if (a.workspace > 0) {
            try {
                ws = empty({int64_t(a.workspace)}, DType::u8, pr.x.device());
            } catch (const OutOfMemory& e) {
                note_cudnn_fallback();
                std::cerr << "hpt: cuDNN conv2d " << kDirName[dir] << ": algorithm " << a.algo << " needs "
                          << (a.workspace >> 20) << " MiB of workspace, which cannot be allocated ("
                          << e.what() << "); "
                          << (i + 1 == algos.size()            ? std::string("no algorithm left")
                              : algos[i + 1].algo == kGemmAlgo ? std::string("falling back to the batched GEMM")
                                  : "falling back to algorithm " + std::to_string(algos[i + 1].algo))
                          << std::endl;
                continue;
            }
        }
        HPT_CUDA_CHECK(cudnnSetConvolutionMathType(pr.cd.d, a.math));
        run(a.algo, ws.defined() ? ws.data_ptr() : nullptr, a.workspace);
        return;
    }
    throw OutOfMemory(str("conv2d ", kDirName[dir], " on cuDNN: no algorithm's workspace could be allocated for ",
                          cache_key(dir, pr)));
}

// ---- kernels

void conv2d_cuda(const KernelArgs& args) {
    const Tensor &x = args.in[0], &w = args.in[1], &b = args.in[2];
    const Tensor& y = args.out[0];
    const Conv2dAttrs& p = args.attr<Conv2dAttrs>();
    if (y.numel() == 0) return;
    Problem pr(x, w, y, p);
    cudnnHandle_t h = dnn();
    const Scaling k(x.dtype());
    const void *one = k.one(), *zero = k.zero();
    run_with_fallback(kForward, pr, [&](int algo, void* ws, size_t wn) {
        HPT_CUDA_CHECK(cudnnConvolutionForward(h, one, pr.xd.d, x.data_ptr(), pr.wd.d, w.data_ptr(), pr.cd.d,
                                               cudnnConvolutionFwdAlgo_t(algo), ws, wn, zero, pr.yd.d, y.data_ptr()));
    });
    if (b.defined()) conv2d_add_bias(y, b);
}
HPT_REGISTER_CUDA_KERNEL(conv2d, conv2d_cuda);

void conv2d_backward_cuda(const KernelArgs& args) {
    const Tensor &gy = args.in[0], &x = args.in[1], &w = args.in[2];
    const Tensor &gx = args.out[0], &gw = args.out[1], &gb = args.out[2];
    const Conv2dAttrs& p = args.attr<Conv2dAttrs>();
    if (gy.numel() == 0) {  // an empty batch: cuDNN rejects zero-sized descriptors
        for (const Tensor* t : {&gx, &gw, &gb})
            if (t->defined()) zero_on_device(*t);
        return;
    }
    cudnnHandle_t h = dnn();
    const Scaling k(x.dtype());
    const void *one = k.one(), *zero = k.zero();
    if (gx.defined() && gx.numel() > 0) {
        Problem pr(gx, w, gy, p);
        run_with_fallback(kBackwardData, pr, [&](int algo, void* ws, size_t wn) {
            HPT_CUDA_CHECK(cudnnConvolutionBackwardData(h, one, pr.wd.d, w.data_ptr(), pr.yd.d, gy.data_ptr(), pr.cd.d,
                                                        cudnnConvolutionBwdDataAlgo_t(algo), ws, wn, zero, pr.xd.d,
                                                        gx.data_ptr()));
        });
    }
    if (gw.defined() && gw.numel() > 0) {
        Problem pr(x, gw, gy, p);
        run_with_fallback(kBackwardFilter, pr, [&](int algo, void* ws, size_t wn) {
            HPT_CUDA_CHECK(cudnnConvolutionBackwardFilter(h, one, pr.xd.d, x.data_ptr(), pr.yd.d, gy.data_ptr(),
                                                          pr.cd.d, cudnnConvolutionBwdFilterAlgo_t(algo), ws, wn, zero,
                                                          pr.wd.d, gw.data_ptr()));
        });
    }
    if (gb.defined()) conv2d_bias_grad(gy, gb);
}
HPT_REGISTER_CUDA_KERNEL(conv2d_backward, conv2d_backward_cuda);

}  // namespace
}  // namespace hpt::cuda

#endif  // HPT_WITH_CUDNN
