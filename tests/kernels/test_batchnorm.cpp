// batchnorm2d: training with statistics over G groups of the batch (ghost BN, G = 1, 2, 4),
// the running-statistics update, eval mode, and the input/gamma/beta gradients — against f64 loops.
//
// The saved statistics (per-group mean and 1/std) are outputs nobody sees; they are checked through
// what uses them: the output and, in the backward, every gradient.
#include <cstdint>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "engine/ops/ops.h"
#include "tests/kernels/reference.h"
#include "tests/support/devices.h"

using namespace hpt;
using namespace hpt::test;

namespace {

struct BnData {
    int64_t N, C, H, W;
    std::vector<float> x, gamma, beta, rm, rv, g;
};

// Channels with different offsets and spreads (one with a variance near eps's scale of influence).
BnData bn_data(int64_t N, int64_t C, int64_t H, int64_t W, uint32_t seed) {
    BnData d{N, C, H, W, {}, {}, {}, {}, {}, {}};
    const std::vector<float> u = uniform_floats(N * C * H * W, seed);
    const double offset[] = {2.0, -1.0, 0.5, 0.0, 3.0}, spread[] = {3.0, 0.5, 1.0, 0.01, 2.0};
    d.x.resize(u.size());
    for (int64_t i = 0; i < int64_t(u.size()); ++i) {
        const int64_t c = (i / (H * W)) % C;
        d.x[size_t(i)] = float(offset[c % 5] + spread[c % 5] * u[size_t(i)]);
    }
    d.gamma = signed_floats(C, seed + 1, 0.5, 1.5);
    d.beta = uniform_floats(C, seed + 2);
    d.rm = uniform_floats(C, seed + 3);
    d.rv = uniform_floats(C, seed + 4, 0.5, 2.0);
    d.g = uniform_floats(N * C * H * W, seed + 5);
    return d;
}

struct BnRef {
    std::vector<double> y, gx, ggamma, gbeta, rm, rv;
    // First-order error bounds of an f32 implementation, in eps (max over elements): statistics may
    // be accumulated in f32 (a sum of n terms is within n * eps/2 * sum|terms|), 1/std may take
    // ~1 ulp, and the saved statistics are rounded to f32.
    double y_bound = 0, gx_bound = 0, gg_bound = 0, gb_bound = 0, rm_bound = 0, rv_bound = 0;
    std::vector<std::vector<double>> group_mean, group_var;  // [G][C], biased variance
};

// Training-mode reference (or eval mode with the running statistics when !training).
BnRef bn_ref(const BnData& d, int64_t G, bool training, double momentum, double eps) {
    const int64_t N = d.N, C = d.C, HW = d.H * d.W, Ng = N / G;
    const double M = double(Ng * HW);
    BnRef r;
    r.y.assign(d.x.size(), 0.0);
    r.gx.assign(d.x.size(), 0.0);
    r.ggamma.assign(size_t(C), 0.0);
    r.gbeta.assign(size_t(C), 0.0);
    r.rm = widen(d.rm);
    r.rv = widen(d.rv);
    r.group_mean.assign(size_t(G), std::vector<double>(size_t(C)));
    r.group_var.assign(size_t(G), std::vector<double>(size_t(C)));
    auto at = [&](int64_t n, int64_t c, int64_t i) { return size_t((n * C + c) * HW + i); };
    for (int64_t c = 0; c < C; ++c) {
        double mean_sum = 0, var_sum = 0, e_mean_sum = 0, e_var_sum = 0, gg_err = 0, gg_abs = 0, sum_abs_dy = 0;
        const double gam = d.gamma[size_t(c)], beta = d.beta[size_t(c)];
        for (int64_t g = 0; g < G; ++g) {
            double mean = 0, var = 0, e_m = 0, e_i = 1.5;  // e_m: absolute error of the mean; e_i: relative of 1/std
            if (training) {
                double sx = 0;
                for (int64_t n = g * Ng; n < (g + 1) * Ng; ++n)
                    for (int64_t i = 0; i < HW; ++i) mean += d.x[at(n, c, i)], sx += std::fabs(d.x[at(n, c, i)]);
                mean /= M;
                for (int64_t n = g * Ng; n < (g + 1) * Ng; ++n)
                    for (int64_t i = 0; i < HW; ++i) var += (d.x[at(n, c, i)] - mean) * (d.x[at(n, c, i)] - mean);
                var /= M;
                e_m = 0.5 * (sx + std::fabs(mean));
                const double e_var = 0.5 * M + 2;  // relative, two-pass sum of squares
                e_i = 0.5 * (e_var * var / (var + eps) + 0.5) + 1.5;
                mean_sum += mean;
                var_sum += var * M / (M - 1);
                e_mean_sum += e_m;
                e_var_sum += e_var * var * M / (M - 1);
            } else {
                mean = d.rm[size_t(c)], var = d.rv[size_t(c)];
            }
            r.group_mean[size_t(g)][size_t(c)] = mean;
            r.group_var[size_t(g)][size_t(c)] = var;
            const double inv = 1.0 / std::sqrt(var + eps), scale = gam * inv;
            double sg = 0, sgx = 0, sdy = 0, sdyx = 0, e_xhat_dy = 0;
            for (int64_t n = g * Ng; n < (g + 1) * Ng; ++n)
                for (int64_t i = 0; i < HW; ++i) {
                    const double x = d.x[at(n, c, i)], xhat = (x - mean) * inv, y = xhat * gam + beta, dy = d.g[at(n, c, i)];
                    r.y[at(n, c, i)] = y;
                    // Statistics' errors, then the roundings of either y = x*s + (beta - mean*s) or
                    // y = (x - mean)*inv*gamma + beta.
                    r.y_bound = std::max(r.y_bound, std::fabs(gam) * (inv * e_m + std::fabs(xhat) * e_i) +
                                                        0.5 * (2 * std::fabs(x * scale) + std::fabs(beta - mean * scale) +
                                                               2 * std::fabs(xhat * gam) + std::fabs(y)));
                    sg += dy, sgx += dy * xhat;
                    sdy += std::fabs(dy), sdyx += std::fabs(dy * xhat);
                    e_xhat_dy += std::fabs(dy) * (inv * e_m + std::fabs(xhat) * e_i);
                }
            r.gbeta[size_t(c)] += sg;
            r.ggamma[size_t(c)] += sgx;
            sum_abs_dy += sdy;
            const double e_sg = training ? 0.5 * M * sdy : 0.0;
            const double e_sgx = 0.5 * (M + 1) * sdyx + e_xhat_dy;
            gg_err += e_sgx;
            gg_abs += std::fabs(sgx);
            for (int64_t n = g * Ng; n < (g + 1) * Ng; ++n)
                for (int64_t i = 0; i < HW; ++i) {
                    const double dy = d.g[at(n, c, i)], xhat = (d.x[at(n, c, i)] - mean) * inv;
                    double gx;
                    if (training) {
                        const double k = gam * inv / M, bracket = M * dy - sg - xhat * sgx;
                        gx = k * bracket;
                        const double e_xhat = inv * e_m + std::fabs(xhat) * e_i;
                        const double err = std::fabs(k) * (e_i * std::fabs(bracket) + e_sg + e_xhat * std::fabs(sgx) +
                                                           std::fabs(xhat) * e_sgx) +
                                           0.5 * (std::fabs(k) * (M * std::fabs(dy) + std::fabs(sg) +
                                                                  2 * std::fabs(xhat * sgx)) + std::fabs(gx));
                        r.gx_bound = std::max(r.gx_bound, err);
                    } else {
                        gx = dy * gam * inv;
                        r.gx_bound = std::max(r.gx_bound, (e_i + 1) * std::fabs(gx));
                    }
                    r.gx[at(n, c, i)] = gx;
                }
        }
        r.gg_bound = std::max(r.gg_bound, gg_err + 0.5 * (G + 1) * gg_abs);
        r.gb_bound = std::max(r.gb_bound, 0.5 * double(N * HW + 1) * sum_abs_dy);
        if (training) {
            const double rm_new = (1 - momentum) * d.rm[size_t(c)] + momentum * mean_sum / double(G);
            const double rv_new = (1 - momentum) * d.rv[size_t(c)] + momentum * var_sum / double(G);
            r.rm_bound = std::max(r.rm_bound, momentum * e_mean_sum / double(G) +
                                                  0.5 * (G + 3) * (std::fabs((1 - momentum) * d.rm[size_t(c)]) +
                                                                   std::fabs(momentum * mean_sum / double(G))));
            r.rv_bound = std::max(r.rv_bound, momentum * e_var_sum / double(G) +
                                                  0.5 * (G + 3) * (std::fabs((1 - momentum) * d.rv[size_t(c)]) +
                                                                   std::fabs(momentum * var_sum / double(G))));
            r.rm[size_t(c)] = rm_new;
            r.rv[size_t(c)] = rv_new;
        }
    }
    return r;
}

struct BnRun {
    Tensor y, x, gamma, beta, rm, rv;
};

BnRun bn_run(const BnData& d, const BatchNormAttrs& a, Device dev) {
    BnRun r;
    const Shape s{d.N, d.C, d.H, d.W};
    r.x = make_f32(d.x, s, dev, true);
    r.gamma = make_f32(d.gamma, {d.C}, dev, true);
    r.beta = make_f32(d.beta, {d.C}, dev, true);
    r.rm = make_f32(d.rm, {d.C}, dev);
    r.rv = make_f32(d.rv, {d.C}, dev);
    r.y = batchnorm2d(r.x, r.gamma, r.beta, r.rm, r.rv, a);
    REQUIRE(r.y.shape() == s);
    r.y.backward(make_f32(d.g, s, dev));
    return r;
}

}  // namespace

HPT_DEVICE_TEST("batchnorm2d training: per-group statistics, running update and gradients", "[batchnorm]") {
    const BnData d = bn_data(8, 5, 5, 4, 4000);
    for (int64_t G : {1, 2, 4}) {
        INFO("groups " << G);
        BatchNormAttrs a;
        a.training = true, a.groups = G, a.momentum = 0.1, a.eps = 1e-5;
        const BnRun run = bn_run(d, a, dev);
        const BnRef r = bn_ref(d, G, true, a.momentum, a.eps);
        const Shape s{d.N, d.C, d.H, d.W};
        HPT_CHECK_CLOSE(run.y, ref_tensor(r.y, s), tol(DType::f32, r.y_bound, 0));
        // running = (1 - m) * running + m * (average over groups of each group's mean / unbiased variance)
        HPT_CHECK_CLOSE(run.rm, ref_tensor(r.rm, {d.C}), tol(DType::f32, r.rm_bound, 0));
        HPT_CHECK_CLOSE(run.rv, ref_tensor(r.rv, {d.C}), tol(DType::f32, r.rv_bound, 0));
        HPT_CHECK_CLOSE(run.x.grad(), ref_tensor(r.gx, s), tol(DType::f32, r.gx_bound, 0));
        HPT_CHECK_CLOSE(run.gamma.grad(), ref_tensor(r.ggamma, {d.C}), tol(DType::f32, r.gg_bound, 0));
        HPT_CHECK_CLOSE(run.beta.grad(), ref_tensor(r.gbeta, {d.C}), tol(DType::f32, r.gb_bound, 0));

        // Each group is normalised on its own: with gamma's and beta's effect undone, every
        // (group, channel) slice of the output has mean 0 and variance var / (var + eps).
        const std::vector<double> y = run.y.to_vector<double>();
        const int64_t HW = d.H * d.W, Ng = d.N / G;
        for (int64_t g = 0; g < G; ++g) {
            for (int64_t c = 0; c < d.C; ++c) {
                double m = 0, q = 0;
                for (int64_t n = g * Ng; n < (g + 1) * Ng; ++n)
                    for (int64_t i = 0; i < HW; ++i) {
                        const double xhat = (y[size_t((n * d.C + c) * HW + i)] - d.beta[size_t(c)]) / d.gamma[size_t(c)];
                        m += xhat, q += xhat * xhat;
                    }
                m /= double(Ng * HW), q /= double(Ng * HW);
                const double var = r.group_var[size_t(g)][size_t(c)];
                INFO("group " << g << " channel " << c << ": mean " << m << ", mean square " << q);
                CHECK(std::fabs(m) < 2e-5);
                CHECK(std::fabs(q - m * m - var / (var + a.eps)) < 2e-5);
            }
        }
    }
}

HPT_DEVICE_TEST("batchnorm2d groups of one sample, and momentum and eps as given", "[batchnorm]") {
    const BnData d = bn_data(4, 3, 3, 5, 4100);
    BatchNormAttrs a;
    a.training = true, a.groups = 4, a.momentum = 0.3, a.eps = 1e-3;
    const BnRun run = bn_run(d, a, dev);
    const BnRef r = bn_ref(d, 4, true, a.momentum, a.eps);
    const Shape s{d.N, d.C, d.H, d.W};
    HPT_CHECK_CLOSE(run.y, ref_tensor(r.y, s), tol(DType::f32, r.y_bound, 0));
    HPT_CHECK_CLOSE(run.rm, ref_tensor(r.rm, {d.C}), tol(DType::f32, r.rm_bound, 0));
    HPT_CHECK_CLOSE(run.rv, ref_tensor(r.rv, {d.C}), tol(DType::f32, r.rv_bound, 0));
    HPT_CHECK_CLOSE(run.x.grad(), ref_tensor(r.gx, s), tol(DType::f32, r.gx_bound, 0));
    HPT_CHECK_CLOSE(run.gamma.grad(), ref_tensor(r.ggamma, {d.C}), tol(DType::f32, r.gg_bound, 0));
    HPT_CHECK_CLOSE(run.beta.grad(), ref_tensor(r.gbeta, {d.C}), tol(DType::f32, r.gb_bound, 0));
}

HPT_DEVICE_TEST("batchnorm2d eval mode uses and keeps the running statistics", "[batchnorm]") {
    const BnData d = bn_data(6, 4, 3, 5, 4200);
    BatchNormAttrs a;
    a.training = false, a.groups = 3;  // groups only matter in training
    const BnRun run = bn_run(d, a, dev);
    const BnRef r = bn_ref(d, 1, false, a.momentum, a.eps);
    const Shape s{d.N, d.C, d.H, d.W};
    HPT_CHECK_CLOSE(run.y, ref_tensor(r.y, s), tol(DType::f32, r.y_bound, 0));
    CHECK(run.rm.to_vector<float>() == d.rm);
    CHECK(run.rv.to_vector<float>() == d.rv);
    HPT_CHECK_CLOSE(run.x.grad(), ref_tensor(r.gx, s), tol(DType::f32, r.gx_bound, 0));
    HPT_CHECK_CLOSE(run.gamma.grad(), ref_tensor(r.ggamma, {d.C}), tol(DType::f32, r.gg_bound, 0));
    HPT_CHECK_CLOSE(run.beta.grad(), ref_tensor(r.gbeta, {d.C}), tol(DType::f32, r.gb_bound, 0));
}

HPT_DEVICE_TEST("batchnorm2d without affine parameters or running statistics", "[batchnorm]") {
    BnData d = bn_data(4, 3, 4, 4, 4300);
    std::fill(d.gamma.begin(), d.gamma.end(), 1.0f);
    std::fill(d.beta.begin(), d.beta.end(), 0.0f);
    const Shape s{d.N, d.C, d.H, d.W};
    BatchNormAttrs a;
    a.groups = 2;
    Tensor x = make_f32(d.x, s, dev, true);
    Tensor y = batchnorm2d(x, Tensor(), Tensor(), Tensor(), Tensor(), a);
    y.backward(make_f32(d.g, s, dev));
    const BnRef r = bn_ref(d, 2, true, a.momentum, a.eps);
    HPT_CHECK_CLOSE(y, ref_tensor(r.y, s), tol(DType::f32, r.y_bound, 0));
    HPT_CHECK_CLOSE(x.grad(), ref_tensor(r.gx, s), tol(DType::f32, r.gx_bound, 0));
}

// The fused tail of a ResNet block, relu(bn(x) + residual), and the fused relu(bn(x)) against the
// three separate ops on the same device: forward, running statistics and every gradient must agree
// to the bit, since the fused kernels do the add's and the ReLU's arithmetic on the same values. A
// residual that needs no gradient lets the backward kernel mask the gradient as it reads it; one
// that does gets the masked gradient as a tensor.
HPT_DEVICE_TEST("batchnorm2d with a fused residual and ReLU equals batchnorm2d, add, relu to the bit", "[batchnorm]") {
    const BnData d = bn_data(8, 5, 5, 4, 4400);
    const Shape s{d.N, d.C, d.H, d.W};
    // Centred on 0 with the outputs' spread, so that about half of the sums are clamped.
    const std::vector<float> res = uniform_floats(d.N * d.C * d.H * d.W, 4401, -1.5, 1.5);
    enum Residual { none, with_grad, without_grad };
    for (const bool training : {true, false}) {
        for (const Residual mode : {with_grad, without_grad, none}) {
            const bool with_residual = mode != none;
            INFO((training ? "training" : "eval")
                 << (mode == with_grad ? ", residual with gradient" : mode == without_grad ? ", residual without gradient" : ", no residual"));
            BatchNormAttrs a;
            a.training = training, a.groups = 2;
            struct Run {
                Tensor y, x, gamma, beta, rm, rv, r;
            };
            auto run = [&](bool fused) {
                Run o;
                o.x = make_f32(d.x, s, dev, true);
                o.gamma = make_f32(d.gamma, {d.C}, dev, true);
                o.beta = make_f32(d.beta, {d.C}, dev, true);
                o.rm = make_f32(d.rm, {d.C}, dev);
                o.rv = make_f32(d.rv, {d.C}, dev);
                o.r = with_residual ? make_f32(res, s, dev, mode == with_grad) : Tensor();
                if (fused) {
                    BatchNormAttrs f = a;
                    f.relu = true;
                    o.y = batchnorm2d(o.x, o.gamma, o.beta, o.rm, o.rv, f, o.r);
                } else {
                    const Tensor b = batchnorm2d(o.x, o.gamma, o.beta, o.rm, o.rv, a);
                    o.y = relu(with_residual ? b + o.r : b);
                }
                o.y.backward(make_f32(d.g, s, dev));
                return o;
            };
            const Run f = run(true), u = run(false);
            const std::vector<float> y = f.y.to_vector<float>();
            const int64_t zeros = std::count(y.begin(), y.end(), 0.0f);
            INFO(zeros << " of " << y.size() << " outputs clamped");
            CHECK(zeros > int64_t(y.size()) / 5);  // the mask matters in the backward
            CHECK(zeros < int64_t(y.size()) * 4 / 5);
            CHECK(y == u.y.to_vector<float>());
            CHECK(f.rm.to_vector<float>() == u.rm.to_vector<float>());
            CHECK(f.rv.to_vector<float>() == u.rv.to_vector<float>());
            CHECK(f.x.grad().to_vector<float>() == u.x.grad().to_vector<float>());
            CHECK(f.gamma.grad().to_vector<float>() == u.gamma.grad().to_vector<float>());
            CHECK(f.beta.grad().to_vector<float>() == u.beta.grad().to_vector<float>());
            if (mode == with_grad) CHECK(f.r.grad().to_vector<float>() == u.r.grad().to_vector<float>());
        }
    }
}

HPT_DEVICE_TEST("batchnorm2d names a residual of the wrong shape, dtype or device", "[batchnorm]") {
    const BnData d = bn_data(2, 3, 2, 2, 4500);
    const Tensor x = make_f32(d.x, {2, 3, 2, 2}, dev);
    BatchNormAttrs a;
    a.relu = true;
    CHECK_THROWS_WITH(batchnorm2d(x, Tensor(), Tensor(), Tensor(), Tensor(), a, zeros({2, 3, 2, 1}, DType::f32, dev)),
                      Catch::Contains("residual") && Catch::Contains("does not have the shape"));
    CHECK_THROWS_WITH(batchnorm2d(x, Tensor(), Tensor(), Tensor(), Tensor(), a, zeros({2, 3, 2, 2}, DType::f64, dev)),
                      Catch::Contains("dtypes differ"));
    if (dev.is_cuda())
        CHECK_THROWS_WITH(batchnorm2d(x, Tensor(), Tensor(), Tensor(), Tensor(), a, zeros({2, 3, 2, 2})),
                          Catch::Contains("different devices"));
}
