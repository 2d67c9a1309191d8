// CPU pooling kernels over contiguous NCHW planes; work is split over (sample, channel) planes.
#include <algorithm>
#include <cstdint>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/ops/attrs.h"
#include "engine/ops/registry.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/select_bits.h"

namespace hpt {
namespace {

struct Plane {
    int64_t planes, H, W, OH, OW;
};

Plane plane_of(const Tensor& x, const Tensor& y) {
    return {x.size(0) * x.size(1), x.size(2), x.size(3), y.size(2), y.size(3)};
}

// Indices are positions inside the input plane (h * W + w), as in PyTorch. In a window, the first
// element counts, then each later one (row-major window order) that is greater, until a NaN, which
// wins (the first NaN). A row of outputs is done together, window position by window position, so
// that the outputs' running maxima are independent chains side by side, updated with selects; the
// chains hold the position inside the window as a 32-bit integer, not the 64-bit plane index, so
// that value, position and NaN flag are lanes of one width and the loop vectorises. ResNet-50's
// stem pooling (32x64x112x112, 3x3 stride 2) on this repository's 2-core test machine: 120-125 ms
// one window at a time with branches, 97-103 ms with 64-bit index chains (on 2026-11-27: 153-161
// ms), 31-32 ms like this (the same day, same minute; the same outputs).
template <class T>
void max_fwd(const Plane& s, const Pool2dAttrs& p, const T* x, T* y, int64_t* idx) {
    using C = typename compute_type<T>::type;
    const int64_t kh = p.kernel[0], kw = p.kernel[1], sh = p.stride[0], sw = p.stride[1];
    const int64_t ph = p.padding[0], pw = p.padding[1];
    parallel_for(s.planes, 1, [&](int64_t b, int64_t e) {
        std::vector<C> best_v(size_t(s.OW));
        std::vector<int32_t> pos_v(size_t(s.OW)), nan_v(size_t(s.OW));
        C* const best = best_v.data();
        int32_t* const pos = pos_v.data();
        int32_t* const nan_seen = nan_v.data();
        for (int64_t pl = b; pl < e; ++pl) {
            const T* xp = x + pl * s.H * s.W;
            for (int64_t i = 0; i < s.OH; ++i) {
                std::fill(best, best + s.OW, -std::numeric_limits<C>::infinity());
                std::fill(pos, pos + s.OW, int32_t(-1));
                std::fill(nan_seen, nan_seen + s.OW, int32_t(0));
                for (int64_t u = 0; u < kh; ++u) {
                    const int64_t h = i * sh - ph + u;
                    if (h < 0 || h >= s.H) continue;
                    const T* row = xp + h * s.W;
                    for (int64_t v = 0; v < kw; ++v) {
                        // Outputs j whose window column w = j * sw + off lies inside the row.
                        const int64_t off = v - pw;
                        const int64_t j0 = off >= 0 ? 0 : (-off + sw - 1) / sw;
                        const int64_t j1 = s.W - 1 - off < 0 ? 0 : std::min<int64_t>(s.OW, (s.W - 1 - off) / sw + 1);
                        const int32_t here = int32_t(u * kw + v);
                        for (int64_t j = j0; j < j1; ++j) {
                            const C val = C(row[j * sw + off]);
                            const int32_t is_nan = val != val;
                            const bool take = (nan_seen[j] == 0) & ((pos[j] < 0) | (val > best[j]) | (is_nan != 0));
                            best[j] = take ? val : best[j];
                            pos[j] = take ? here : pos[j];
                            nan_seen[j] |= is_nan;
                        }
                    }
                }
                const int64_t o = (pl * s.OH + i) * s.OW;
                for (int64_t j = 0; j < s.OW; ++j) {
                    y[o + j] = T(best[j]);
                    const int64_t u = pos[j] / kw, v = pos[j] % kw;
                    idx[o + j] = pos[j] < 0 ? -1 : (i * sh - ph + u) * s.W + j * sw - pw + v;
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
