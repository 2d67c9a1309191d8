// CUDA softmax, log_softmax, cross_entropy and l2_normalize (forward and backward kernels).
// Mirrors kernels/cpu/softmax.cpp: a contiguous tensor viewed as [outer, n, inner] with the
// reduced dim in the middle, statistics in double.
//
// Each kernel body is written once over a "team" that owns one lane: a whole thread block when
// lanes are long and contiguous (inner == 1, n >= 256; block reductions in a fixed order), or a
// single thread otherwise (the CPU's sequential order, coalesced across neighbouring lanes).
// cross_entropy records a bad class target in the device error word and gives that row a NaN loss.
#include <cstdint>
#include <cmath>
#include <limits>

#include "engine/ops/attrs.h"
#include "engine/ops/registry.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernel_entry.h"

namespace hpt::cuda {
namespace {

struct Lanes {
    int64_t count, n, inner;
    __device__ int64_t offset(int64_t w) const { return (w / inner) * n * inner + w % inner; }
};

Lanes lanes_of(const Tensor& t, int64_t dim) {
    Lanes l{1, t.dim() ? t.size(dim) : 1, 1};
    int64_t outer = 1;
    for (int64_t d = 0; d < dim; ++d) outer *= t.size(d);
    for (int64_t d = dim + 1; d < t.dim(); ++d) l.inner *= t.size(d);
    l.count = outer * l.inner;
    return l;
}

// The CPU's std::max(m, v): a NaN v is passed over (the sum that follows turns NaN anyway).
struct CpuMaxOp {
    __device__ double operator()(double a, double b) const { return a < b ? b : a; }
};

template <bool Block>
struct Team {
    __device__ static int64_t first_lane() { return Block ? blockIdx.x : int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }
    __device__ static int64_t lane_step() { return Block ? gridDim.x : int64_t(gridDim.x) * blockDim.x; }
    __device__ static int64_t rank() { return Block ? threadIdx.x : 0; }
    __device__ static int64_t size() { return Block ? blockDim.x : 1; }
    __device__ static double sum(double v) {
        if constexpr (Block) v = block_reduce(v, SumOp{});
        return v;
    }
    __device__ static double max(double v) {
        if constexpr (Block) v = block_reduce(v, CpuMaxOp{});
        return v;
    }
};

#define HPT_FOR_LANES(w, lanes) for (int64_t w = Tm::first_lane(); w < (lanes); w += Tm::lane_step())
#define HPT_FOR_TEAM(i, n) for (int64_t i = Tm::rank(); i < (n); i += Tm::size())

bool use_block(const Lanes& l) { return l.inner == 1 && l.n >= 256; }

// Launches kernel<T, Block> with a team layout suited to `l`.
template <class Kernel, class... A>
void launch_lanes(const char* name, const Lanes& l, Kernel block_kernel, Kernel thread_kernel, const A&... args) {
    if (l.count == 0) return;
    if (use_block(l)) {
        block_kernel<<<unsigned(std::min<int64_t>(l.count, 1 << 20)), kThreads, 0, current_stream()>>>(l, args...);
    } else {
        thread_kernel<<<grid_for(l.count), kThreads, 0, current_stream()>>>(l, args...);
    }
    HPT_CUDA_LAUNCH_CHECK(name);
}

// ---------------------------------------------------------------- softmax, log_softmax

template <class T, bool Block>
__global__ void softmax_fwd(Lanes l, const T* x, T* y, bool log_out) {
    using Tm = Team<Block>;
    HPT_FOR_LANES(w, l.count) {
        const int64_t off = l.offset(w), st = l.inner;
        double m = -HUGE_VAL;
        HPT_FOR_TEAM(i, l.n) m = CpuMaxOp{}(m, double(x[off + i * st]));
        m = Tm::max(m);
        double s = 0.0;
        HPT_FOR_TEAM(i, l.n) s += exp(double(x[off + i * st]) - m);
        // (x - m) - log(s), never x - (m + log(s)), which loses log(s) next to a huge m.
        const double ls = log(Tm::sum(s));
        HPT_FOR_TEAM(i, l.n) {
            const double v = (double(x[off + i * st]) - m) - ls;
            y[off + i * st] = T(log_out ? v : exp(v));
        }
    }
}

template <class T, bool Block>
__global__ void softmax_bwd(Lanes l, const T* g, const T* y, T* gx, bool log_out) {
    using Tm = Team<Block>;
    HPT_FOR_LANES(w, l.count) {
        const int64_t off = l.offset(w), st = l.inner;
        double s = 0.0;  // softmax: sum(g*y); log_softmax: sum(g)
        HPT_FOR_TEAM(i, l.n) s += double(g[off + i * st]) * (log_out ? 1.0 : double(y[off + i * st]));
        s = Tm::sum(s);
        HPT_FOR_TEAM(i, l.n) {
            const double gi = double(g[off + i * st]), yi = double(y[off + i * st]);
            gx[off + i * st] = T(log_out ? gi - exp(yi) * s : yi * (gi - s));
        }
    }
}

void softmax_cuda(const KernelArgs& a) {
    const Lanes l = lanes_of(a.in[0], a.attr<DimAttrs>().dim);
    const bool log_out = a.op == OpId::log_softmax;
    HPT_DISPATCH_FLOAT(a.in[0].dtype(), op_name(a.op), [&] {
        using T = scalar_t;
        launch_lanes(op_name(a.op), l, softmax_fwd<T, true>, softmax_fwd<T, false>, a.in[0].data<T>(),
                     a.out[0].data<T>(), log_out);
    });
}

void softmax_backward_cuda(const KernelArgs& a) {
    const Lanes l = lanes_of(a.in[0], a.attr<DimAttrs>().dim);
    const bool log_out = a.op == OpId::log_softmax_backward;
    HPT_DISPATCH_FLOAT(a.in[0].dtype(), op_name(a.op), [&] {
        using T = scalar_t;
        launch_lanes(op_name(a.op), l, softmax_bwd<T, true>, softmax_bwd<T, false>, a.in[0].data<T>(),
                     a.in[1].data<T>(), a.out[0].data<T>(), log_out);
    });
}
HPT_REGISTER_CUDA_KERNEL(softmax, softmax_cuda);
HPT_REGISTER_CUDA_KERNEL(log_softmax, softmax_cuda);
HPT_REGISTER_CUDA_KERNEL(softmax_backward, softmax_backward_cuda);
HPT_REGISTER_CUDA_KERNEL(log_softmax_backward, softmax_backward_cuda);

// ---------------------------------------------------------------- cross_entropy

// Row i: lse_i and lse_i - x[i, t_i] (NaN for a bad target, which is reported).
template <class T, bool Block>
__global__ void ce_rows(Lanes l, const T* x, const int64_t* target, T* lse_out, double* row_loss,
                        DeviceErrorWord* err) {
    using Tm = Team<Block>;
    HPT_FOR_LANES(i, l.count) {
        const T* r = x + i * l.n;
        double m = -HUGE_VAL;
        HPT_FOR_TEAM(j, l.n) m = CpuMaxOp{}(m, double(r[j]));
        m = Tm::max(m);
        double s = 0.0;
        HPT_FOR_TEAM(j, l.n) s += exp(double(r[j]) - m);
        const double ls = log(Tm::sum(s));
        if (Tm::rank() == 0) {
            lse_out[i] = T(m + ls);
            const int64_t t = target[i];
            if (t < 0 || t >= l.n) {
                report_bad_value(err, int(OpId::cross_entropy), t, i, l.n);
                row_loss[i] = nan("");
            } else {
                row_loss[i] = (m - double(r[t])) + ls;
            }
        }
    }
}

// loss = mean of the row losses, summed by one block in a fixed order.
template <class T>
__global__ void ce_mean(const double* row_loss, int64_t N, T* loss) {
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < N; i += blockDim.x) s += row_loss[i];
    s = block_reduce(s, SumOp{});
    if (threadIdx.x == 0) loss[0] = T(s / double(N));
}

void cross_entropy_cuda(const KernelArgs& a) {
    const Tensor &x = a.in[0], &target = a.in[1];
    const int64_t N = x.size(0), C = x.size(1);
    const Lanes l{N, C, 1};
    Tensor row_loss = empty({N}, DType::f64, x.device());
    HPT_DISPATCH_FLOAT(x.dtype(), "cross_entropy", [&] {
        using T = scalar_t;
        launch_lanes("cross_entropy", l, ce_rows<T, true>, ce_rows<T, false>, x.data<T>(), target.data<int64_t>(),
                     a.out[1].data<T>(), row_loss.data<double>(), device_error_word());
        ce_mean<T><<<1, 1024, 0, current_stream()>>>(row_loss.data<double>(), N, a.out[0].data<T>());
        HPT_CUDA_LAUNCH_CHECK("cross_entropy_mean");
    });
}
HPT_REGISTER_CUDA_KERNEL(cross_entropy, cross_entropy_cuda);

// gx = g/N * (softmax(x) - onehot(target)); g may be a host number or a device scalar. The row's
// max and sum are recomputed in double (as on the CPU) rather than read from the saved lse, whose
// rounding to the logits' dtype would cost |lse| * eps/2 relative in every probability.
template <class T, bool Block>
__global__ void ce_backward(Lanes l, Arg<T> g, const T* x, const int64_t* target, T* gx, DeviceErrorWord* err) {
    using Tm = Team<Block>;
    const double scale = double(g.at(0)) / double(l.count);
    HPT_FOR_LANES(i, l.count) {
        const T* r = x + i * l.n;
        double m = -HUGE_VAL;
        HPT_FOR_TEAM(j, l.n) m = CpuMaxOp{}(m, double(r[j]));
        m = Tm::max(m);
        double s = 0.0;
        HPT_FOR_TEAM(j, l.n) s += exp(double(r[j]) - m);
        s = Tm::sum(s);
        const int64_t t = target[i];
        if ((t < 0 || t >= l.n) && Tm::rank() == 0) report_bad_value(err, int(OpId::cross_entropy_backward), t, i, l.n);
        HPT_FOR_TEAM(j, l.n) {
            const double p = exp(double(r[j]) - m) / s;
            gx[i * l.n + j] = T(scale * (p - (j == t ? 1.0 : 0.0)));
        }
    }
}

void cross_entropy_backward_cuda(const KernelArgs& a) {
    const Tensor &g = a.in[0], &x = a.in[1], &target = a.in[2];
    const Lanes l{x.size(0), x.size(1), 1};
    HPT_DISPATCH_FLOAT(x.dtype(), "cross_entropy_backward", [&] {
        using T = scalar_t;
        launch_lanes("cross_entropy_backward", l, ce_backward<T, true>, ce_backward<T, false>, arg_of<T>(g),
                     x.data<T>(), target.data<int64_t>(), a.out[0].data<T>(), device_error_word());
    });
}
HPT_REGISTER_CUDA_KERNEL(cross_entropy_backward, cross_entropy_backward_cuda);

// ---------------------------------------------------------------- l2_normalize

template <class T, bool Block>
__global__ void l2_fwd(Lanes l, const T* x, T* y, double eps) {
    using Tm = Team<Block>;
    HPT_FOR_LANES(w, l.count) {
        const int64_t off = l.offset(w), st = l.inner;
        double s = 0.0;
        HPT_FOR_TEAM(i, l.n) s += double(x[off + i * st]) * double(x[off + i * st]);
        const double inv = 1.0 / fmax(sqrt(Tm::sum(s)), eps);
        HPT_FOR_TEAM(i, l.n) y[off + i * st] = T(double(x[off + i * st]) * inv);
    }
}

// With r = max(||x||, eps): if ||x|| > eps, gx = (g - y * sum(g*y)) / r, else gx = g / eps.
template <class T, bool Block>
__global__ void l2_bwd(Lanes l, const T* g, const T* x, const T* y, T* gx, double eps) {
    using Tm = Team<Block>;
    HPT_FOR_LANES(w, l.count) {
        const int64_t off = l.offset(w), st = l.inner;
        double s = 0.0, gy = 0.0;
        HPT_FOR_TEAM(i, l.n) {
            s += double(x[off + i * st]) * double(x[off + i * st]);
            gy += double(g[off + i * st]) * double(y[off + i * st]);
        }
        s = Tm::sum(s);
        gy = Tm::sum(gy);
        const double norm = sqrt(s);
        const bool clamped = norm <= eps;
        const double r = clamped ? eps : norm;
        HPT_FOR_TEAM(i, l.n) {
            const double gi = double(g[off + i * st]);
            gx[off + i * st] = T(clamped ? gi / r : (gi - double(y[off + i * st]) * gy) / r);
        }
    }
}

void l2_normalize_cuda(const KernelArgs& a) {
    const L2NormAttrs& at = a.attr<L2NormAttrs>();
    const Lanes l = lanes_of(a.in[0], at.dim);
    HPT_DISPATCH_FLOAT(a.in[0].dtype(), "l2_normalize", [&] {
        using T = scalar_t;
        launch_lanes("l2_normalize", l, l2_fwd<T, true>, l2_fwd<T, false>, a.in[0].data<T>(), a.out[0].data<T>(),
                     at.eps);
    });
}

void l2_normalize_backward_cuda(const KernelArgs& a) {
    const L2NormAttrs& at = a.attr<L2NormAttrs>();
    const Lanes l = lanes_of(a.in[1], at.dim);
    HPT_DISPATCH_FLOAT(a.in[1].dtype(), "l2_normalize_backward", [&] {
        using T = scalar_t;
        launch_lanes("l2_normalize_backward", l, l2_bwd<T, true>, l2_bwd<T, false>, a.in[0].data<T>(),
                     a.in[1].data<T>(), a.in[2].data<T>(), a.out[0].data<T>(), at.eps);
    });
}
HPT_REGISTER_CUDA_KERNEL(l2_normalize, l2_normalize_cuda);
HPT_REGISTER_CUDA_KERNEL(l2_normalize_backward, l2_normalize_backward_cuda);

}  // namespace
}  // namespace hpt::cuda
