// CUDA batchnorm2d forward and backward over G groups of the batch. Mirrors
// kernels/cpu/batchnorm2d.cpp: x is contiguous NCHW, group g holds samples [g*N/G, (g+1)*N/G),
// statistics are accumulated in double, outputs y, mean[G, C] and invstd[G, C], and the running
// statistics move towards the average over groups of each group's mean and unbiased variance.
//
// Statistics take one pass over x instead of the CPU's two: each (group, channel) slice sums
// x - K and (x - K)^2 with the shift K = the slice's first element, which removes the
// cancellation of the textbook one-pass formula for data far from zero (the CPU's centred second
// pass gives the same values to double rounding). Each slice is cut into a number of splits that
// depends only on the shape; a block reduces a split in a fixed order and the per-split partials
// are added in split order, so results are bitwise repeatable (no float atomics). The optional
// residual (in[5]) and ReLU apply to each written value with the add and relu kernels' arithmetic.
#include "engine/ops/attrs.h"
#include "engine/ops/registry.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernel_entry.h"
#include <cstdint>

namespace hpt::cuda {
namespace {

struct Geom {
    int64_t N, C, HW, G, Ng, count;  // count: values per (group, channel)
    int64_t splits, chunk;
};

Geom geom_of(const Tensor& x, int64_t groups) {
    Geom g;
    g.N = x.size(0), g.C = x.size(1), g.HW = x.size(2) * x.size(3), g.G = groups, g.Ng = g.N / g.G;
    g.count = g.Ng * g.HW;
    // At least 8192 values per block, and enough blocks to fill a large GPU (a function of the
    // shape only, so the summation order does not depend on the device).
    const int64_t slices = g.G * g.C;
    g.splits = std::max<int64_t>(1, std::min<int64_t>({ceil_div(g.count, 8192), ceil_div(1056, slices), 64}));
    g.chunk = std::max<int64_t>(1, ceil_div(g.count, g.splits));
    g.splits = std::max<int64_t>(1, ceil_div(g.count, g.chunk));
    return g;
}

// Index arithmetic over the NCHW tensor, in 32 bits with FastDiv when the tensor has fewer than
// 2^31 elements (the usual case), else in 64 bits.
template <class I, class Div>
struct Ix {
    I HW, C, Ng;
    Div by_hw, by_c, by_ng;
    // Element e of slice (g, c), e in [0, count).
    __device__ I slice_at(I g, I c, I e) const {
        const I n_in = by_hw.div(e);
        return ((g * Ng + n_in) * C + c) * HW + (e - n_in * HW);
    }
    // The channel c and the (group, channel) slice gc of element e of the whole tensor.
    __device__ void locate(I e, I& c, I& gc) const {
        const I plane = by_hw.div(e);
        const I n = by_c.div(plane);
        c = plane - n * C;
        gc = by_ng.div(n) * C + c;
    }
};

// Calls f(Ix) with the narrowest index type that fits the tensor.
template <class F>
void with_index(const Geom& s, int64_t numel, const F& f) {
    if (numel < (int64_t(1) << 31)) {
        f(Ix<uint32_t, FastDiv>{uint32_t(s.HW), uint32_t(s.C), uint32_t(s.Ng), FastDiv(std::max<int64_t>(s.HW, 1)),
                                FastDiv(std::max<int64_t>(s.C, 1)), FastDiv(std::max<int64_t>(s.Ng, 1))});
    } else {
        f(Ix<int64_t, WideDiv>{s.HW, s.C, s.Ng, WideDiv(s.HW), WideDiv(s.C), WideDiv(s.Ng)});
    }
}

// Per split of each slice: sum of (x - K) and of (x - K)^2. Grid (G*C, splits).
template <class T, class I, class Div>
__global__ void bn_stats_partial(Geom s, Ix<I, Div> ix, const T* x, double2* partial) {
    const I gc = blockIdx.x, g = gc / ix.C, c = gc - g * ix.C;
    const double K = double(x[ix.slice_at(g, c, 0)]);
    const I e0 = I(blockIdx.y) * I(s.chunk), e1 = I(min(s.count, int64_t(e0) + s.chunk));
    double s1 = 0.0, s2 = 0.0;
    for (I e = e0 + threadIdx.x; e < e1; e += blockDim.x) {
        const double v = double(x[ix.slice_at(g, c, e)]) - K;
        s1 += v;
        s2 += v * v;
    }
    s1 = block_reduce(s1, SumOp{});
    s2 = block_reduce(s2, SumOp{});
    if (threadIdx.x == 0) partial[gc * s.splits + blockIdx.y] = make_double2(s1, s2);
}

// One thread per channel: group statistics, the affine map y = (x - mean) * scale + bias per (g, c),
// and the running statistics. `training` false: the running statistics are the statistics.
template <class T, class I, class Div>
__global__ void bn_stats_finish(Geom s, Ix<I, Div> ix, const T* x, const double2* partial, const T* gamma, const T* beta, T* rm,
                                T* rv, T* mean_out, T* invstd_out, T* scale, T* bias, bool training, double momentum,
                                double eps) {
    const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (c >= s.C) return;
    const double count = double(s.count);
    double mean_sum = 0.0, var_sum = 0.0;
    for (int64_t g = 0; g < s.G; ++g) {
        const int64_t gc = g * s.C + c;
        double mean, invstd;
        if (training) {
            double s1 = 0.0, s2 = 0.0;
            for (int64_t k = 0; k < s.splits; ++k) {
                s1 += partial[gc * s.splits + k].x;
                s2 += partial[gc * s.splits + k].y;
            }
            const double K = double(x[ix.slice_at(I(g), I(c), 0)]);
            const double q = fmax(s2 - s1 * s1 / count, 0.0);  // centred sum of squares
            mean = K + s1 / count;
            invstd = 1.0 / sqrt(q / count + eps);
            mean_sum += mean;
            var_sum += q / (count - 1.0);  // unbiased, for the running estimate
        } else {
            mean = double(rm[c]);
            invstd = 1.0 / sqrt(double(rv[c]) + eps);
        }
        mean_out[gc] = T(mean);
        invstd_out[gc] = T(invstd);
        const double sc = (gamma ? double(gamma[c]) : 1.0) * invstd;
        scale[gc] = T(sc);
        bias[gc] = T(beta ? double(beta[c]) : 0.0);
    }
    if (training && rm) {
        rm[c] = T((1.0 - momentum) * double(rm[c]) + momentum * mean_sum / double(s.G));
        rv[c] = T((1.0 - momentum) * double(rv[c]) + momentum * var_sum / double(s.G));
    }
}

// y = (x - mean[g, c]) * scale[g, c] + bias[g, c] [+ residual], [max(., 0)], as the CPU computes it:
// x * scale + (bias - mean * scale) cancels badly when |mean| is large against the spread, which BN
// after residual sums often sees. I is the index type (32-bit when the tensor allows).
template <class T, class I, class Div>
__global__ void bn_apply(I n, Ix<I, Div> ix, const T* x, const T* mean, const T* scale, const T* bias, const T* residual,
                         bool relu, T* y) {
    for (I e = I(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += I(gridDim.x) * blockDim.x) {
        I c, gc;
        ix.locate(e, c, gc);
        T v = (x[e] - mean[gc]) * scale[gc] + bias[gc];
        if (residual) v = v + residual[e];
        y[e] = relu && v < T(0) ? T(0) : v;  // relu's NaN and -0 behaviour
    }
}

template <class T>
void bn_forward(const KernelArgs& args) {
    const Tensor &x = args.in[0], &gamma = args.in[1], &beta = args.in[2], &rm = args.in[3], &rv = args.in[4];
    const Tensor residual = args.n_in > 5 ? args.in[5] : Tensor();
    const BatchNormAttrs& a = args.attr<BatchNormAttrs>();
    const Geom s = geom_of(x, a.groups);
    const int64_t slices = s.G * s.C;
    if (slices == 0) return;
    cudaStream_t st = current_stream();
    const int64_t n = x.numel();
    const bool stats = a.training && s.count > 0;
    Tensor partial;
    if (stats) partial = empty({slices * s.splits * 2}, DType::f64, x.device());
    const Tensor affine = empty({2, slices}, x.dtype(), x.device());
    T* scale = affine.data<T>();
    T* bias = scale + slices;
    auto ptr = [](const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; };
    with_index(s, n, [&](auto ix) {
        using I = decltype(ix.HW);
        if (stats) {
            bn_stats_partial<<<dim3(unsigned(slices), unsigned(s.splits)), kThreads, 0, st>>>(
                s, ix, x.data<T>(), static_cast<double2*>(partial.data_ptr()));
            HPT_CUDA_LAUNCH_CHECK("batchnorm2d_stats");
        }
        bn_stats_finish<<<unsigned(ceil_div(s.C, 128)), 128, 0, st>>>(
            s, ix, x.data<T>(), stats ? static_cast<const double2*>(partial.data_ptr()) : nullptr, ptr(gamma),
            ptr(beta), ptr(rm), ptr(rv), args.out[1].data<T>(), args.out[2].data<T>(), scale, bias, stats,
            a.momentum, a.eps);
        HPT_CUDA_LAUNCH_CHECK("batchnorm2d_finish");
        if (n == 0) return;
        bn_apply<<<grid_for(n), kThreads, 0, st>>>(I(n), ix, x.data<T>(), static_cast<const T*>(args.out[1].data<T>()),
                                                   static_cast<const T*>(scale), static_cast<const T*>(bias),
                                                   ptr(residual), a.relu, args.out[0].data<T>());
        HPT_CUDA_LAUNCH_CHECK("batchnorm2d_apply");
    });
}

void batchnorm2d_cuda(const KernelArgs& args) {
    HPT_DISPATCH_FLOAT(args.in[0].dtype(), "batchnorm2d", [&] { bn_forward<scalar_t>(args); });
}
HPT_REGISTER_CUDA_KERNEL(batchnorm2d, batchnorm2d_cuda);

// ---------------------------------------------------------------- backward

// dy at e, or 0 where the fused ReLU clamped: relu_backward's mask (y > 0) on the forward's output
// y, applied as the gradient is read (mask == nullptr: no ReLU, or the caller masked already).
template <class T, class I>
__device__ __forceinline__ T grad_at(const T* gy, const T* mask, I e) {
    return !mask || mask[e] > T(0) ? gy[e] : T(0);
}

// Per split of each slice: sum of dy and of dy * (x - mean).
template <class T, class I, class Div>
__global__ void bn_grad_partial(Geom s, Ix<I, Div> ix, const T* gy, const T* mask, const T* x, const T* mean,
                                double2* partial) {
    const I gc = blockIdx.x, g = gc / ix.C, c = gc - g * ix.C;
    const double m = double(mean[gc]);
    const I e0 = I(blockIdx.y) * I(s.chunk), e1 = I(min(s.count, int64_t(e0) + s.chunk));
    double sg = 0.0, sgx = 0.0;
    for (I e = e0 + threadIdx.x; e < e1; e += blockDim.x) {
        const I at = ix.slice_at(g, c, e);
        const double q = double(grad_at(gy, mask, at));
        sg += q;
        sgx += q * (double(x[at]) - m);
    }
    sg = block_reduce(sg, SumOp{});
    sgx = block_reduce(sgx, SumOp{});
    if (threadIdx.x == 0) partial[gc * s.splits + blockIdx.y] = make_double2(sg, sgx);
}

// One thread per channel: per-group sums (kept for dx) and dgamma, dbeta over groups.
template <class T>
__global__ void bn_grad_finish(Geom s, const double2* partial, const T* invstd, double2* sums, T* dgamma, T* dbeta) {
    const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (c >= s.C) return;
    double dg = 0.0, db = 0.0;
    for (int64_t g = 0; g < s.G; ++g) {
        const int64_t gc = g * s.C + c;
        double sg = 0.0, sgx = 0.0;
        for (int64_t k = 0; k < s.splits; ++k) {
            sg += partial[gc * s.splits + k].x;
            sgx += partial[gc * s.splits + k].y;
        }
        sgx *= double(invstd[gc]);
        sums[gc] = make_double2(sg, sgx);
        db += sg;
        dg += sgx;
    }
    if (dgamma) dgamma[c] = T(dg);
    if (dbeta) dbeta[c] = T(db);
}

// training: dx = gamma*inv/M * (M*dy - sum(dy) - xhat*sum(dy*xhat)); eval: dx = dy * gamma * inv.
template <class T, class I, class Div>
__global__ void bn_grad_input(I n, Geom s, Ix<I, Div> ix, const T* gy, const T* mask, const T* x, const T* gamma,
                              const T* mean, const T* invstd, const double2* sums, T* gx, bool training) {
    const double count = double(s.count);
    for (I e = I(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += I(gridDim.x) * blockDim.x) {
        I c, gc;
        ix.locate(e, c, gc);
        const double gam = gamma ? double(gamma[c]) : 1.0, inv = double(invstd[gc]);
        if (training) {
            const double k = gam * inv / count;
            const double xhat = (double(x[e]) - double(mean[gc])) * inv;
            gx[e] = T(k * (count * double(grad_at(gy, mask, e)) - sums[gc].x - xhat * sums[gc].y));
        } else {
            gx[e] = grad_at(gy, mask, e) * T(gam * inv);
        }
    }
}

template <class T>
void bn_backward(const KernelArgs& args) {
    const Tensor &gy = args.in[0], &x = args.in[1], &gamma = args.in[2], &mean = args.in[3], &invstd = args.in[4];
    const Tensor &gx = args.out[0], &gg = args.out[1], &gb = args.out[2];
    const Tensor mask = args.n_in > 5 ? args.in[5] : Tensor();
    const BatchNormAttrs& a = args.attr<BatchNormAttrs>();
    const Geom s = geom_of(x, a.groups);
    const int64_t slices = s.G * s.C;
    if (slices == 0) return;
    cudaStream_t st = current_stream();
    const int64_t n = x.numel();
    const Tensor partial = empty({slices * s.splits * 2}, DType::f64, x.device());
    const Tensor sums = empty({slices * 2}, DType::f64, x.device());
    auto ptr = [](const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; };
    with_index(s, n, [&](auto ix) {
        using I = decltype(ix.HW);
        if (s.count > 0) {
            bn_grad_partial<<<dim3(unsigned(slices), unsigned(s.splits)), kThreads, 0, st>>>(
                s, ix, gy.data<T>(), ptr(mask), x.data<T>(), mean.data<T>(), static_cast<double2*>(partial.data_ptr()));
            HPT_CUDA_LAUNCH_CHECK("batchnorm2d_backward_sums");
        } else {
            HPT_CUDA_CHECK(cudaMemsetAsync(partial.data_ptr(), 0, size_t(partial.numel()) * 8, st));
        }
        bn_grad_finish<T><<<unsigned(ceil_div(s.C, 128)), 128, 0, st>>>(
            s, static_cast<const double2*>(partial.data_ptr()), invstd.data<T>(),
            static_cast<double2*>(sums.data_ptr()), ptr(gg), ptr(gb));
        HPT_CUDA_LAUNCH_CHECK("batchnorm2d_backward_finish");
        if (!gx.defined() || n == 0) return;
        bn_grad_input<<<grid_for(n), kThreads, 0, st>>>(I(n), s, ix, gy.data<T>(), ptr(mask), x.data<T>(), ptr(gamma),
                                                        mean.data<T>(), invstd.data<T>(),
                                                        static_cast<const double2*>(sums.data_ptr()), gx.data<T>(),
                                                        a.training);
        HPT_CUDA_LAUNCH_CHECK("batchnorm2d_backward_input");
    });
}

void batchnorm2d_backward_cuda(const KernelArgs& args) {
    HPT_DISPATCH_FLOAT(args.in[1].dtype(), "batchnorm2d_backward", [&] { bn_backward<scalar_t>(args); });
}
HPT_REGISTER_CUDA_KERNEL(batchnorm2d_backward, batchnorm2d_backward_cuda);

}  // namespace
}  // namespace hpt::cuda
