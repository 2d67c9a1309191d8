// CPU pooling kernels over contiguous NCHW planes; work is split over (sample, channel) planes.
#include <cstdint>
#include <cmath>
#include <limits>

#include "engine/ops/attrs.h"
#include "engine/ops/registry.h"
#include "kernels/cpu/parallel.h"

namespace hpt {
namespace {

struct Plane {
    int64_t planes, H, W, OH, OW;
};

Plane plane_of(const Tensor& x, const Tensor& y) {
    return {x.size(0) * x.size(1), x.size(2), x.size(3), y.size(2), y.size(3)};
}

// Indices are positions inside the input plane (h * W + w), as in PyTorch.
template <class T>
void max_fwd(const Plane& s, const Pool2dAttrs& p, const T* x, T* y, int64_t* idx) {
    using C = typename compute_type<T>::type;
    parallel_for(s.planes, 1, [&](int64_t b, int64_t e) {
        for (int64_t pl = b; pl < e; ++pl) {
            const T* xp = x + pl * s.H * s.W;
            for (int64_t i = 0; i < s.OH; ++i) {
                for (int64_t j = 0; j < s.OW; ++j) {
                    C best = -std::numeric_limits<C>::infinity();
                    int64_t bi = -1;
                    for (int64_t u = 0; u < p.kernel[0]; ++u) {
                        const int64_t h = i * p.stride[0] - p.padding[0] + u;
                        if (h < 0 || h >= s.H) continue;
                        for (int64_t v = 0; v < p.kernel[1]; ++v) {
                            const int64_t w = j * p.stride[1] - p.padding[1] + v;
                            if (w < 0 || w >= s.W) continue;
                            const C val = C(xp[h * s.W + w]);
                            if (bi < 0 || val > best || std::isnan(double(val))) {
                                best = val;
                                bi = h * s.W + w;
                                if (std::isnan(double(val))) goto done;
                            }
                        }
                    }
                done:
                    const int64_t o = (pl * s.OH + i) * s.OW + j;
                    y[o] = T(best);
                    idx[o] = bi;
                }
            }
        }
    });
}

void max_pool2d_kernel(const KernelArgs& args) {
    const Tensor& x = args.in[0];
    const Plane s = plane_of(x, args.out[0]);
    HPT_DISPATCH_FLOAT_BF16(x.dtype(), "max_pool2d", [&] {
        max_fwd<scalar_t>(s, args.attr<Pool2dAttrs>(), x.data<scalar_t>(), args.out[0].data<scalar_t>(),
                          args.out[1].data<int64_t>());
    });
}
HPT_REGISTER_KERNEL(max_pool2d, cpu, max_pool2d_kernel);

void max_pool2d_backward_kernel(const KernelArgs& args) {
    const Tensor &g = args.in[0], &idx = args.in[1];
    const Tensor& gx = args.out[0];
    const Plane s = plane_of(gx, g);
    HPT_DISPATCH_FLOAT_BF16(g.dtype(), "max_pool2d_backward", [&] {
        using C = typename compute_type<scalar_t>::type;
        const scalar_t* pg = g.data<scalar_t>();
        const int64_t* pi = idx.data<int64_t>();
        scalar_t* px = gx.data<scalar_t>();
        parallel_for(s.planes, 1, [&](int64_t b, int64_t e) {
            std::vector<C> acc(size_t(s.H * s.W));
            for (int64_t pl = b; pl < e; ++pl) {
                std::fill(acc.begin(), acc.end(), C(0));
                for (int64_t o = 0; o < s.OH * s.OW; ++o) {
                    const int64_t k = pi[pl * s.OH * s.OW + o];
                    if (k >= 0) acc[size_t(k)] += C(pg[pl * s.OH * s.OW + o]);
                }
                for (int64_t k = 0; k < s.H * s.W; ++k) px[pl * s.H * s.W + k] = scalar_t(acc[size_t(k)]);
            }
        });
    });
}
HPT_REGISTER_KERNEL(max_pool2d_backward, cpu, max_pool2d_backward_kernel);

// The window of output (i, j) and the divisor it averages with.
struct Window {
    int64_t h0, h1, w0, w1;
    double div;
};

Window avg_window(const Plane& s, const Pool2dAttrs& p, int64_t i, int64_t j) {
    int64_t h0 = i * p.stride[0] - p.padding[0], w0 = j * p.stride[1] - p.padding[1];
    int64_t h1 = std::min(h0 + p.kernel[0], s.H + p.padding[0]), w1 = std::min(w0 + p.kernel[1], s.W + p.padding[1]);
    const double padded = double((h1 - h0) * (w1 - w0));
    h0 = std::max<int64_t>(h0, 0), w0 = std::max<int64_t>(w0, 0);
    h1 = std::min(h1, s.H), w1 = std::min(w1, s.W);
    return {h0, h1, w0, w1, p.count_include_pad ? padded : double((h1 - h0) * (w1 - w0))};
}

// adaptive: bin i covers [floor(i*H/OH), ceil((i+1)*H/OH)).
Window adaptive_window(const Plane& s, int64_t i, int64_t j) {
    const int64_t h0 = i * s.H / s.OH, h1 = ((i + 1) * s.H + s.OH - 1) / s.OH;
    const int64_t w0 = j * s.W / s.OW, w1 = ((j + 1) * s.W + s.OW - 1) / s.OW;
    return {h0, h1, w0, w1, double((h1 - h0) * (w1 - w0))};
}

template <class WindowOf>
void avg_forward(const KernelArgs& args, WindowOf window_of) {
    const Tensor &x = args.in[0], &y = args.out[0];
    const Plane s = plane_of(x, y);
    HPT_DISPATCH_FLOAT_BF16(x.dtype(), op_name(args.op), [&] {
        const scalar_t* px = x.data<scalar_t>();
        scalar_t* py = y.data<scalar_t>();
        parallel_for(s.planes, 1, [&](int64_t b, int64_t e) {
            for (int64_t pl = b; pl < e; ++pl) {
                for (int64_t i = 0; i < s.OH; ++i) {
                    for (int64_t j = 0; j < s.OW; ++j) {
                        const Window w = window_of(s, i, j);
                        double acc = 0.0;
                        for (int64_t h = w.h0; h < w.h1; ++h)
                            for (int64_t q = w.w0; q < w.w1; ++q) acc += double(px[(pl * s.H + h) * s.W + q]);
                        py[(pl * s.OH + i) * s.OW + j] = scalar_t(typename compute_type<scalar_t>::type(acc / w.div));
                    }
                }
            }
        });
    });
}

template <class WindowOf>
void avg_backward(const KernelArgs& args, WindowOf window_of) {
    const Tensor &g = args.in[0], &gx = args.out[0];
    const Plane s = plane_of(gx, g);
    HPT_DISPATCH_FLOAT_BF16(g.dtype(), op_name(args.op), [&] {
        const scalar_t* pg = g.data<scalar_t>();
        scalar_t* px = gx.data<scalar_t>();
        parallel_for(s.planes, 1, [&](int64_t b, int64_t e) {
            std::vector<double> acc(size_t(s.H * s.W));
            for (int64_t pl = b; pl < e; ++pl) {
                std::fill(acc.begin(), acc.end(), 0.0);
                for (int64_t i = 0; i < s.OH; ++i) {
                    for (int64_t j = 0; j < s.OW; ++j) {
                        const Window w = window_of(s, i, j);
                        const double v = double(pg[(pl * s.OH + i) * s.OW + j]) / w.div;
                        for (int64_t h = w.h0; h < w.h1; ++h)
                            for (int64_t q = w.w0; q < w.w1; ++q) acc[size_t(h * s.W + q)] += v;
                    }
                }
                for (int64_t k = 0; k < s.H * s.W; ++k) px[pl * s.H * s.W + k] = scalar_t(typename compute_type<scalar_t>::type(acc[size_t(k)]));
            }
        });
    });
}

void avg_pool2d_kernel(const KernelArgs& args) {
    const Pool2dAttrs& p = args.attr<Pool2dAttrs>();
    avg_forward(args, [&](const Plane& s, int64_t i, int64_t j) { return avg_window(s, p, i, j); });
}
void avg_pool2d_backward_kernel(const KernelArgs& args) {
    const Pool2dAttrs& p = args.attr<Pool2dAttrs>();
    avg_backward(args, [&](const Plane& s, int64_t i, int64_t j) { return avg_window(s, p, i, j); });
}
void adaptive_kernel(const KernelArgs& args) { avg_forward(args, adaptive_window); }
void adaptive_backward_kernel(const KernelArgs& args) { avg_backward(args, adaptive_window); }

HPT_REGISTER_KERNEL(avg_pool2d, cpu, avg_pool2d_kernel);
HPT_REGISTER_KERNEL(avg_pool2d_backward, cpu, avg_pool2d_backward_kernel);
HPT_REGISTER_KERNEL(adaptive_avg_pool2d, cpu, adaptive_kernel);
HPT_REGISTER_KERNEL(adaptive_avg_pool2d_backward, cpu, adaptive_backward_kernel);

}  // namespace
}  // namespace hpt
