// CPU softmax, log_softmax, cross_entropy and l2_normalize (forward and backward kernels).
// Each works on a contiguous tensor viewed as [outer, n, inner] with the reduced dim in the middle.
#include <cstdint>
#include <cmath>
#include <limits>

#include "engine/ops/attrs.h"
#include "engine/ops/registry.h"
#include "kernels/cpu/parallel.h"

namespace hpt {
namespace {

struct Lanes {
    int64_t outer, n, inner;
};

Lanes lanes(const Tensor& t, int64_t dim) {
    Lanes l{1, t.dim() ? t.size(dim) : 1, 1};
    for (int64_t d = 0; d < dim; ++d) l.outer *= t.size(d);
    for (int64_t d = dim + 1; d < t.dim(); ++d) l.inner *= t.size(d);
    return l;
}

// Calls f(offset, stride) for every lane of length l.n.
template <class F>
void each_lane(const Lanes& l, const F& f) {
    parallel_for(l.outer * l.inner, std::max<int64_t>(1, 4096 / std::max<int64_t>(l.n, 1)), [&](int64_t b, int64_t e) {
        for (int64_t w = b; w < e; ++w) f((w / l.inner) * l.n * l.inner + w % l.inner, l.inner);
    });
}

template <class T>
void softmax_fwd(const Tensor& x, const Tensor& y, int64_t dim, bool log_out) {
    const Lanes l = lanes(x, dim);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    each_lane(l, [&](int64_t off, int64_t st) {
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t i = 0; i < l.n; ++i) m = std::max(m, double(px[off + i * st]));
        double s = 0.0;
        for (int64_t i = 0; i < l.n; ++i) s += std::exp(double(px[off + i * st]) - m);
        // (x - m) - log(s), never x - (m + log(s)): for |m| beyond ~2^52 * log(s) the latter
        // loses log(s) entirely (a lane of equal logits 1e30 would give softmax 1, not 1/n).
        const double ls = std::log(s);
        for (int64_t i = 0; i < l.n; ++i) {
            const double v = (double(px[off + i * st]) - m) - ls;
            py[off + i * st] = T(log_out ? v : std::exp(v));
        }
    });
}

template <class T>
void softmax_bwd(const Tensor& g, const Tensor& y, const Tensor& gx, int64_t dim, bool log_out) {
    const Lanes l = lanes(g, dim);
    const T* pg = g.data<T>();
    const T* py = y.data<T>();
    T* px = gx.data<T>();
    each_lane(l, [&](int64_t off, int64_t st) {
        double s = 0.0;  // softmax: sum(g*y); log_softmax: sum(g)
        for (int64_t i = 0; i < l.n; ++i) s += double(pg[off + i * st]) * (log_out ? 1.0 : double(py[off + i * st]));
        for (int64_t i = 0; i < l.n; ++i) {
            const double gi = double(pg[off + i * st]), yi = double(py[off + i * st]);
            px[off + i * st] = T(log_out ? gi - std::exp(yi) * s : yi * (gi - s));
        }
    });
}

void softmax_kernel(const KernelArgs& a) {
    HPT_DISPATCH_FLOAT(a.in[0].dtype(), op_name(a.op), [&] {
        softmax_fwd<scalar_t>(a.in[0], a.out[0], a.attr<DimAttrs>().dim, a.op == OpId::log_softmax);
    });
}
void softmax_backward_kernel(const KernelArgs& a) {
    HPT_DISPATCH_FLOAT(a.in[0].dtype(), op_name(a.op), [&] {
        softmax_bwd<scalar_t>(a.in[0], a.in[1], a.out[0], a.attr<DimAttrs>().dim, a.op == OpId::log_softmax_backward);
    });
}
HPT_REGISTER_KERNEL(softmax, cpu, softmax_kernel);
HPT_REGISTER_KERNEL(log_softmax, cpu, softmax_kernel);
HPT_REGISTER_KERNEL(softmax_backward, cpu, softmax_backward_kernel);
HPT_REGISTER_KERNEL(log_softmax_backward, cpu, softmax_backward_kernel);

void check_targets(const Tensor& target, int64_t C) {
    const int64_t* t = target.data<int64_t>();
    for (int64_t i = 0; i < target.numel(); ++i)
        HPT_CHECK(t[i] >= 0 && t[i] < C, "op 'cross_entropy': target[", i, "] = ", t[i], " is not a class index in [0, ",
                  C, ")");
}

// loss = mean_i (lse_i - x[i, t_i]); also writes lse (in the logits' dtype).
void cross_entropy_kernel(const KernelArgs& a) {
    const Tensor &x = a.in[0], &target = a.in[1];
    const int64_t N = x.size(0), C = x.size(1);
    check_targets(target, C);
    HPT_DISPATCH_FLOAT(x.dtype(), "cross_entropy", [&] {
        const scalar_t* px = x.data<scalar_t>();
        const int64_t* pt = target.data<int64_t>();
        scalar_t* plse = a.out[1].data<scalar_t>();
        std::vector<double> row(static_cast<size_t>(N));
        parallel_for(N, 16, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) {
                const scalar_t* r = px + i * C;
                double m = -std::numeric_limits<double>::infinity();
                for (int64_t j = 0; j < C; ++j) m = std::max(m, double(r[j]));
                double s = 0.0;
                for (int64_t j = 0; j < C; ++j) s += std::exp(double(r[j]) - m);
                plse[i] = scalar_t(m + std::log(s));
                row[size_t(i)] = (m - double(r[pt[i]])) + std::log(s);
            }
        });
        double total = 0.0;
        for (double v : row) total += v;
        a.out[0].data<scalar_t>()[0] = scalar_t(total / double(N));
    });
}
HPT_REGISTER_KERNEL(cross_entropy, cpu, cross_entropy_kernel);

// gx = g/N * (softmax(x) - onehot(target)). The row's max and sum are recomputed in double rather
// than read back from the saved lse: lse rounded to the logits' dtype is off by up to
// |lse| * eps/2, which exp(x - lse) turns into a relative error of |lse| * eps/2 in every
// probability (5e-4 for f32 logits near 1e4 — hundreds of ulps).
void cross_entropy_backward_kernel(const KernelArgs& a) {
    const Tensor &g = a.in[0], &x = a.in[1], &target = a.in[2];
    const int64_t N = x.size(0), C = x.size(1);
    HPT_DISPATCH_FLOAT(x.dtype(), "cross_entropy_backward", [&] {
        const double scale = double(g.data<scalar_t>()[0]) / double(N);
        const scalar_t* px = x.data<scalar_t>();
        const int64_t* pt = target.data<int64_t>();
        scalar_t* pg = a.out[0].data<scalar_t>();
        parallel_for(N, 16, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) {
                const scalar_t* r = px + i * C;
                double m = -std::numeric_limits<double>::infinity();
                for (int64_t j = 0; j < C; ++j) m = std::max(m, double(r[j]));
                double s = 0.0;
                for (int64_t j = 0; j < C; ++j) s += std::exp(double(r[j]) - m);
                for (int64_t j = 0; j < C; ++j) {
                    const double p = std::exp(double(r[j]) - m) / s;
                    pg[i * C + j] = scalar_t(scale * (p - (j == pt[i] ? 1.0 : 0.0)));
                }
            }
        });
    });
}
HPT_REGISTER_KERNEL(cross_entropy_backward, cpu, cross_entropy_backward_kernel);

void l2_normalize_kernel(const KernelArgs& a) {
    const L2NormAttrs& at = a.attr<L2NormAttrs>();
    const Tensor &x = a.in[0], &y = a.out[0];
    const Lanes l = lanes(x, at.dim);
    HPT_DISPATCH_FLOAT(x.dtype(), "l2_normalize", [&] {
        const scalar_t* px = x.data<scalar_t>();
        scalar_t* py = y.data<scalar_t>();
        each_lane(l, [&](int64_t off, int64_t st) {
            double s = 0.0;
            for (int64_t i = 0; i < l.n; ++i) s += double(px[off + i * st]) * double(px[off + i * st]);
            const double inv = 1.0 / std::max(std::sqrt(s), at.eps);
            for (int64_t i = 0; i < l.n; ++i) py[off + i * st] = scalar_t(double(px[off + i * st]) * inv);
        });
    });
}
HPT_REGISTER_KERNEL(l2_normalize, cpu, l2_normalize_kernel);

// With r = max(||x||, eps): if ||x|| > eps, gx = (g - y * sum(g*y)) / r, else gx = g / eps.
void l2_normalize_backward_kernel(const KernelArgs& a) {
    const L2NormAttrs& at = a.attr<L2NormAttrs>();
    const Tensor &g = a.in[0], &x = a.in[1], &y = a.in[2];
    const Lanes l = lanes(x, at.dim);
    HPT_DISPATCH_FLOAT(x.dtype(), "l2_normalize_backward", [&] {
        const scalar_t* pg = g.data<scalar_t>();
        const scalar_t* px = x.data<scalar_t>();
        const scalar_t* py = y.data<scalar_t>();
        scalar_t* po = a.out[0].data<scalar_t>();
        each_lane(l, [&](int64_t off, int64_t st) {
            double s = 0.0, gy = 0.0;
            for (int64_t i = 0; i < l.n; ++i) {
                s += double(px[off + i * st]) * double(px[off + i * st]);
                gy += double(pg[off + i * st]) * double(py[off + i * st]);
            }
            const double norm = std::sqrt(s);
            const bool clamped = norm <= at.eps;
            const double r = clamped ? at.eps : norm;
            for (int64_t i = 0; i < l.n; ++i) {
                const double gi = double(pg[off + i * st]);
                po[off + i * st] = scalar_t(clamped ? gi / r : (gi - double(py[off + i * st]) * gy) / r);
            }
        });
    });
}
HPT_REGISTER_KERNEL(l2_normalize_backward, cpu, l2_normalize_backward_kernel);

}  // namespace
}  // namespace hpt
