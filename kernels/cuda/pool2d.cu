// CUDA pooling kernels over contiguous NCHW planes. Mirrors kernels/cpu/pool2d.cpp: max indices
// are positions inside the input plane (h * W + w), the first maximum wins and NaN wins.
//
// Backward kernels gather instead of scatter: one thread per input element visits the outputs
// whose windows cover it, in the CPU's (row-major output) order, and sums their gradients in the
// CPU's accumulation type. No atomics, so results are deterministic and equal the CPU's bits.
#include "engine/ops/attrs.h"
#include "engine/ops/registry.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernel_entry.h"
#include <cstdint>

namespace hpt::cuda {
namespace {

struct Plane {
    int64_t planes, H, W, OH, OW;
};

Plane plane_of(const Tensor& x, const Tensor& y) {
    return {x.size(0) * x.size(1), x.size(2), x.size(3), y.size(2), y.size(3)};
}

struct PoolGeom {
    int64_t kh, kw, sh, sw, ph, pw;
    bool count_include_pad;
};

PoolGeom geom_of(const Pool2dAttrs& p) {
    return {p.kernel[0], p.kernel[1], p.stride[0], p.stride[1], p.padding[0], p.padding[1], p.count_include_pad};
}

struct Window {
    int64_t h0, h1, w0, w1;
    double div;
};

__device__ inline Window avg_window(const Plane& s, const PoolGeom& p, int64_t i, int64_t j) {
    int64_t h0 = i * p.sh - p.ph, w0 = j * p.sw - p.pw;
    int64_t h1 = min(h0 + p.kh, s.H + p.ph), w1 = min(w0 + p.kw, s.W + p.pw);
    const double padded = double((h1 - h0) * (w1 - w0));
    h0 = max(h0, int64_t(0)), w0 = max(w0, int64_t(0));
    h1 = min(h1, s.H), w1 = min(w1, s.W);
    return {h0, h1, w0, w1, p.count_include_pad ? padded : double((h1 - h0) * (w1 - w0))};
}

// adaptive: bin i covers [floor(i*H/OH), ceil((i+1)*H/OH)).
__device__ inline Window adaptive_window(const Plane& s, const PoolGeom&, int64_t i, int64_t j) {
    const int64_t h0 = i * s.H / s.OH, h1 = ((i + 1) * s.H + s.OH - 1) / s.OH;
    const int64_t w0 = j * s.W / s.OW, w1 = ((j + 1) * s.W + s.OW - 1) / s.OW;
    return {h0, h1, w0, w1, double((h1 - h0) * (w1 - w0))};
}

// Output rows (or columns) whose window of size k, stride st and padding pd may contain h.
__device__ inline void covering(int64_t h, int64_t k, int64_t st, int64_t pd, int64_t n_out, int64_t& lo,
                                int64_t& hi) {
    const int64_t a = h + pd - k + 1;  // i*st >= a
    lo = a <= 0 ? 0 : (a + st - 1) / st;
    hi = min((h + pd) / st, n_out - 1);
}

// Adaptive bins containing h: i in [floor(h*OH/H), ceil((h+1)*OH/H) - 1].
__device__ inline void covering_adaptive(int64_t h, int64_t H, int64_t OH, int64_t& lo, int64_t& hi) {
    lo = h * OH / H;
    hi = min(((h + 1) * OH + H - 1) / H - 1, OH - 1);
}

// ---------------------------------------------------------------- max

template <class T>
__global__ void max_fwd(int64_t n, Plane s, PoolGeom p, const T* x, T* y, int64_t* idx) {
    using C = typename compute_type<T>::type;
    HPT_GRID_STRIDE(o, n) {
        const int64_t j = o % s.OW, i = (o / s.OW) % s.OH, pl = o / (s.OW * s.OH);
        const T* xp = x + pl * s.H * s.W;
        C best = neg_inf<C>();
        int64_t bi = -1;
        bool stop = false;
        for (int64_t u = 0; u < p.kh && !stop; ++u) {
            const int64_t h = i * p.sh - p.ph + u;
            if (h < 0 || h >= s.H) continue;
            for (int64_t v = 0; v < p.kw; ++v) {
                const int64_t w = j * p.sw - p.pw + v;
                if (w < 0 || w >= s.W) continue;
                const C val = C(xp[h * s.W + w]);
                if (bi < 0 || val > best || d_isnan(val)) {
                    best = val;
                    bi = h * s.W + w;
                    if (d_isnan(val)) {
                        stop = true;
                        break;
                    }
                }
            }
        }
        y[o] = T(best);
        idx[o] = bi;
    }
}

template <class T>
__global__ void max_bwd(int64_t n, Plane s, PoolGeom p, const T* g, const int64_t* idx, T* gx) {
    using C = typename compute_type<T>::type;
    HPT_GRID_STRIDE(e, n) {
        const int64_t w = e % s.W, h = (e / s.W) % s.H, pl = e / (s.W * s.H);
        int64_t i0, i1, j0, j1;
        covering(h, p.kh, p.sh, p.ph, s.OH, i0, i1);
        covering(w, p.kw, p.sw, p.pw, s.OW, j0, j1);
        const int64_t base = pl * s.OH * s.OW, k = h * s.W + w;
        C acc = C(0);
        for (int64_t i = i0; i <= i1; ++i)
            for (int64_t j = j0; j <= j1; ++j)
                if (idx[base + i * s.OW + j] == k) acc += C(g[base + i * s.OW + j]);
        gx[e] = T(acc);
    }
}

void max_pool2d_cuda(const KernelArgs& args) {
    const Tensor& x = args.in[0];
    const Plane s = plane_of(x, args.out[0]);
    const PoolGeom p = geom_of(args.attr<Pool2dAttrs>());
    HPT_DISPATCH_FLOAT_BF16(x.dtype(), "max_pool2d", [&] {
        using T = scalar_t;
        launch_linear("max_pool2d", max_fwd<T>, s.planes * s.OH * s.OW, s, p, x.data<T>(), args.out[0].data<T>(),
                      args.out[1].data<int64_t>());
    });
}

void max_pool2d_backward_cuda(const KernelArgs& args) {
    const Tensor &g = args.in[0], &idx = args.in[1], &gx = args.out[0];
    const Plane s = plane_of(gx, g);
    const PoolGeom p = geom_of(args.attr<Pool2dAttrs>());
    HPT_DISPATCH_FLOAT_BF16(g.dtype(), "max_pool2d_backward", [&] {
        using T = scalar_t;
        launch_linear("max_pool2d_backward", max_bwd<T>, s.planes * s.H * s.W, s, p, g.data<T>(),
                      idx.data<int64_t>(), gx.data<T>());
    });
}
HPT_REGISTER_CUDA_KERNEL(max_pool2d, max_pool2d_cuda);
HPT_REGISTER_CUDA_KERNEL(max_pool2d_backward, max_pool2d_backward_cuda);

// ---------------------------------------------------------------- average (fixed and adaptive)

template <class T, bool Adaptive>
__global__ void avg_fwd(int64_t n, Plane s, PoolGeom p, const T* x, T* y) {
    HPT_GRID_STRIDE(o, n) {
        const int64_t j = o % s.OW, i = (o / s.OW) % s.OH, pl = o / (s.OW * s.OH);
        const Window w = Adaptive ? adaptive_window(s, p, i, j) : avg_window(s, p, i, j);
        double acc = 0.0;
        for (int64_t h = w.h0; h < w.h1; ++h)
            for (int64_t q = w.w0; q < w.w1; ++q) acc += double(x[(pl * s.H + h) * s.W + q]);
        y[o] = T(typename compute_type<T>::type(acc / w.div));
    }
}

template <class T, bool Adaptive>
__global__ void avg_bwd(int64_t n, Plane s, PoolGeom p, const T* g, T* gx) {
    HPT_GRID_STRIDE(e, n) {
        const int64_t q = e % s.W, h = (e / s.W) % s.H, pl = e / (s.W * s.H);
        int64_t i0, i1, j0, j1;
        if (Adaptive) {
            covering_adaptive(h, s.H, s.OH, i0, i1);
            covering_adaptive(q, s.W, s.OW, j0, j1);
        } else {
            covering(h, p.kh, p.sh, p.ph, s.OH, i0, i1);
            covering(q, p.kw, p.sw, p.pw, s.OW, j0, j1);
        }
        double acc = 0.0;
        for (int64_t i = i0; i <= i1; ++i) {
            for (int64_t j = j0; j <= j1; ++j) {
                const Window w = Adaptive ? adaptive_window(s, p, i, j) : avg_window(s, p, i, j);
                if (h < w.h0 || h >= w.h1 || q < w.w0 || q >= w.w1) continue;
                acc += double(g[(pl * s.OH + i) * s.OW + j]) / w.div;
            }
        }
        gx[e] = T(typename compute_type<T>::type(acc));
    }
}

template <bool Adaptive>
void avg_forward(const KernelArgs& args) {
    const Tensor &x = args.in[0], &y = args.out[0];
    const Plane s = plane_of(x, y);
    const PoolGeom p = Adaptive ? PoolGeom{} : geom_of(args.attr<Pool2dAttrs>());
    HPT_DISPATCH_FLOAT_BF16(x.dtype(), op_name(args.op), [&] {
        using T = scalar_t;
        launch_linear(op_name(args.op), avg_fwd<T, Adaptive>, s.planes * s.OH * s.OW, s, p, x.data<T>(), y.data<T>());
    });
}

template <bool Adaptive>
void avg_backward(const KernelArgs& args) {
    const Tensor &g = args.in[0], &gx = args.out[0];
    const Plane s = plane_of(gx, g);
    const PoolGeom p = Adaptive ? PoolGeom{} : geom_of(args.attr<Pool2dAttrs>());
    HPT_DISPATCH_FLOAT_BF16(g.dtype(), op_name(args.op), [&] {
        using T = scalar_t;
        launch_linear(op_name(args.op), avg_bwd<T, Adaptive>, s.planes * s.H * s.W, s, p, g.data<T>(), gx.data<T>());
    });
}

HPT_REGISTER_CUDA_KERNEL(avg_pool2d, avg_forward<false>);
HPT_REGISTER_CUDA_KERNEL(avg_pool2d_backward, avg_backward<false>);
HPT_REGISTER_CUDA_KERNEL(adaptive_avg_pool2d, avg_forward<true>);
HPT_REGISTER_CUDA_KERNEL(adaptive_avg_pool2d_backward, avg_backward<true>);

}  // namespace
}  // namespace hpt::cuda
