// CPU batchnorm2d forward and backward over G groups of the batch.
//
// Layout: x is contiguous NCHW; group g holds samples [g*N/G, (g+1)*N/G). Statistics are two-pass
// (mean, then centred sum of squares) in double. Work is split over channels, and each channel's
// sums run in a fixed order, so results do not depend on the thread count. The optional residual
// (in[5]) and ReLU apply to each written value with the add and relu kernels' own arithmetic, so
// the fused op equals batchnorm2d, add, relu to the bit.
#include <cstdint>
#include <cmath>
#include <vector>

#include "engine/ops/attrs.h"
#include "engine/ops/registry.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/select_bits.h"

namespace hpt {
namespace {

// K sums over i in [0, n), each in eight interleaved partial sums (i % 8) added in a fixed tree at
// the end and then into sums[k]: the same result on every run and thread count, and eight
// independent chains of double additions instead of one, which the compiler also vectorises (a
// single chain costs an add latency per element: this halved the forward's time on a 32x64x56x56
// batch, 6.1 -> 2.3-3.1 ms on 2 cores). f(i, acc) adds element i's terms into acc[0..K).
template <int K, class F>
inline void lane_sums(int64_t n, F f, double (&sums)[K]) {
    double acc[8][K] = {};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; ++j) f(i + j, acc[j]);
    for (int j = 0; i < n; ++i, ++j) f(i, acc[j]);
    for (int k = 0; k < K; ++k)
        sums[k] += ((acc[0][k] + acc[1][k]) + (acc[2][k] + acc[3][k])) +
                   ((acc[4][k] + acc[5][k]) + (acc[6][k] + acc[7][k]));
}

template <class T>
void bn_forward(const KernelArgs& args) {
    const Tensor &x = args.in[0], &gamma = args.in[1], &beta = args.in[2], &rm = args.in[3], &rv = args.in[4];
    const BatchNormAttrs& a = args.attr<BatchNormAttrs>();
    const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3), G = a.groups, Ng = N / G;
    const T* px = x.data<T>();
    T* py = args.out[0].data<T>();
    T* pmean = args.out[1].data<T>();
    T* pinv = args.out[2].data<T>();
    const T* pg = gamma.defined() ? gamma.data<T>() : nullptr;
    const T* pb = beta.defined() ? beta.data<T>() : nullptr;
    T* prm = rm.defined() ? rm.data<T>() : nullptr;
    T* prv = rv.defined() ? rv.data<T>() : nullptr;
    const T* pres = args.n_in > 5 && args.in[5].defined() ? args.in[5].data<T>() : nullptr;
    const bool relu = a.relu;
    const double count = double(Ng * HW);
    parallel_for(C, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
            double mean_sum = 0.0, var_sum = 0.0;
            for (int64_t g = 0; g < G; ++g) {
                double mean, invstd;
                if (a.training) {
                    double s[1] = {0.0};
                    for (int64_t n = g * Ng; n < (g + 1) * Ng; ++n) {
                        const T* p = px + (n * C + c) * HW;
                        lane_sums(HW, [p](int64_t i, double(&a)[1]) { a[0] += double(p[i]); }, s);
                    }
                    mean = s[0] / count;
                    double sq[1] = {0.0};
                    for (int64_t n = g * Ng; n < (g + 1) * Ng; ++n) {
                        const T* p = px + (n * C + c) * HW;
                        lane_sums(
                            HW,
                            [p, mean](int64_t i, double(&a)[1]) {
                                const double d = double(p[i]) - mean;
                                a[0] += d * d;
                            },
                            sq);
                    }
                    const double q = sq[0];
                    const double var = q / count;
                    invstd = 1.0 / std::sqrt(var + a.eps);
                    mean_sum += mean;
                    var_sum += q / (count - 1.0);  // unbiased, for the running estimate
                } else {
                    mean = double(prm[c]);
                    invstd = 1.0 / std::sqrt(double(prv[c]) + a.eps);
                }
                pmean[g * C + c] = T(mean);
                pinv[g * C + c] = T(invstd);
                // (x - mean) first: x * scale + (beta - mean * scale) cancels badly when |mean|
                // is large against the spread, which BN after residual sums often sees.
                const T tm = T(mean), ts = T((pg ? double(pg[c]) : 1.0) * invstd), tb = T(pb ? double(pb[c]) : 0.0);
                for (int64_t n = g * Ng; n < (g + 1) * Ng; ++n) {
                    const T* p = px + (n * C + c) * HW;
                    T* q = py + (n * C + c) * HW;
                    if (!pres && !relu) {
                        for (int64_t i = 0; i < HW; ++i) q[i] = (p[i] - tm) * ts + tb;
                        continue;
                    }
                    const T* r = pres ? pres + (n * C + c) * HW : nullptr;
                    for (int64_t i = 0; i < HW; ++i) {
                        T v = (p[i] - tm) * ts + tb;
                        if (r) v = v + r[i];
                        q[i] = relu && v < T(0) ? T(0) : v;  // relu's NaN and -0 behaviour
                    }
                }
            }
            if (a.training && prm) {
                prm[c] = T((1.0 - a.momentum) * double(prm[c]) + a.momentum * mean_sum / double(G));
                prv[c] = T((1.0 - a.momentum) * double(prv[c]) + a.momentum * var_sum / double(G));
            }
        }
    });
}

void batchnorm2d_kernel(const KernelArgs& args) {
    HPT_DISPATCH_FLOAT(args.in[0].dtype(), "batchnorm2d", [&] { bn_forward<scalar_t>(args); });
}
HPT_REGISTER_KERNEL(batchnorm2d, cpu, batchnorm2d_kernel);

// The output gradient at e; with kMasked, +0 where the fused ReLU's output y is not positive
// (relu_backward's mask and result), selected without a branch: as a branch, the random signs of y
// made the masked backward 8x slower than relu_backward and an unmasked backward together
// (32x64x56x56 on 2 cores).
template <bool kMasked, class T>
inline T grad_at(const T* gy, const T* y, int64_t e) {
    if constexpr (kMasked) {
        return select_bits(y[e] > T(0), gy[e], T(0));
    } else {
        return gy[e];
    }
}

template <class T, bool kMasked>
void bn_backward(const KernelArgs& args) {
    const Tensor &gy = args.in[0], &x = args.in[1], &gamma = args.in[2], &mean = args.in[3], &invstd = args.in[4];
    const Tensor &gx = args.out[0], &gg = args.out[1], &gb = args.out[2];
    const BatchNormAttrs& a = args.attr<BatchNormAttrs>();
    const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3), G = a.groups, Ng = N / G;
    const T* pgy = gy.data<T>();
    const T* px = x.data<T>();
    const T* pgam = gamma.defined() ? gamma.data<T>() : nullptr;
    const T* pm = mean.data<T>();
    const T* pi = invstd.data<T>();
    T* pgx = gx.defined() ? gx.data<T>() : nullptr;
    // kMasked: in[5] is the forward's output y = relu(...), and the gradient counts only where
    // y > 0, applied as each value is read.
    const T* pmask = kMasked ? args.in[5].data<T>() : nullptr;
    const double count = double(Ng * HW);
    parallel_for(C, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
            const double gam = pgam ? double(pgam[c]) : 1.0;
            double dgamma = 0.0, dbeta = 0.0;
            for (int64_t g = 0; g < G; ++g) {
                const double m = double(pm[g * C + c]), inv = double(pi[g * C + c]);
                double sums[2] = {0.0, 0.0};  // sum of grad, sum of grad * (x - mean)
                for (int64_t n = g * Ng; n < (g + 1) * Ng; ++n) {
                    const int64_t base = (n * C + c) * HW;
                    const T* p = px + base;
                    lane_sums(
                        HW,
                        [&](int64_t i, double(&a)[2]) {
                            const double q = double(grad_at<kMasked>(pgy, pmask, base + i));
                            a[0] += q;
                            a[1] += q * (double(p[i]) - m);
                        },
                        sums);
                }
                const double sg = sums[0];
                double sgx = sums[1];
                sgx *= inv;
                dbeta += sg;
                dgamma += sgx;
                if (!pgx) continue;
                for (int64_t n = g * Ng; n < (g + 1) * Ng; ++n) {
                    const int64_t base = (n * C + c) * HW;
                    const T* p = px + base;
                    T* r = pgx + base;
                    if (a.training) {
                        // dx = gamma*inv/M * (M*dy - sum(dy) - xhat*sum(dy*xhat))
                        const double k = gam * inv / count;
                        for (int64_t i = 0; i < HW; ++i) {
                            const double xhat = (double(p[i]) - m) * inv;
                            r[i] = T(k * (count * double(grad_at<kMasked>(pgy, pmask, base + i)) - sg - xhat * sgx));
                        }
                    } else {
                        const T k = T(gam * inv);
                        for (int64_t i = 0; i < HW; ++i) r[i] = grad_at<kMasked>(pgy, pmask, base + i) * k;
                    }
                }
            }
            if (gg.defined()) gg.data<T>()[c] = T(dgamma);
            if (gb.defined()) gb.data<T>()[c] = T(dbeta);
        }
    });
}

void batchnorm2d_backward_kernel(const KernelArgs& args) {
    const bool masked = args.n_in > 5 && args.in[5].defined();
    HPT_DISPATCH_FLOAT(args.in[1].dtype(), "batchnorm2d_backward", [&] {
        if (masked) {
            bn_backward<scalar_t, true>(args);
        } else {
            bn_backward<scalar_t, false>(args);
        }
    });
}
HPT_REGISTER_KERNEL(batchnorm2d_backward, cpu, batchnorm2d_backward_kernel);

}  // namespace
}  // namespace hpt
