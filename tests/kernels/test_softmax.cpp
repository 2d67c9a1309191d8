// softmax and log_softmax along every dim of a 3-D tensor (with logits up to 1e4), cross_entropy
// (value and gradient) and l2_normalize (including rows clamped by eps) — against f64 loops.
//
// Bounds model an f32 implementation that subtracts the lane's maximum first: x - max is rounded
// (eps/2 |x - max| absolute in the exponent), exp and log take ~1 ulp, and the n-term sums are
// within n * eps/2 of the sum of absolute values.
#include <cstdint>
#include <catch2/catch.hpp>

#include <cmath>

#include "engine/ops/ops.h"
#include "tests/kernels/reference.h"
#include "tests/support/devices.h"

using namespace hpt;
using namespace hpt::test;

namespace {

// The lanes of a row-major tensor of shape s along `dim`: calls f(offsets) per lane.
template <class F>
void each_lane(const Shape& s, int64_t dim, const F& f) {
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < dim; ++d) outer *= s[size_t(d)];
    for (int64_t d = dim + 1; d < int64_t(s.size()); ++d) inner *= s[size_t(d)];
    const int64_t n = s[size_t(dim)];
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
            std::vector<size_t> idx(static_cast<size_t>(n));
            for (int64_t j = 0; j < n; ++j) idx[size_t(j)] = size_t((o * n + j) * inner + i);
            f(idx);
        }
}

}  // namespace

HPT_DEVICE_TEST("softmax and log_softmax along dims 0, 1 and -1, with large logits", "[softmax]") {
    const Shape s{4, 5, 6};
    uint32_t seed = 6000;
    // Moderate logits, large ones with a clear maximum, and large close ones (1e4 + [-3, 3]).
    const std::vector<std::pair<double, double>> ranges = {{0, 3}, {0, 1e4}, {1e4, 3}};
    for (const auto& range : ranges) {
        for (int64_t dim : {0, 1, -1}) {
            for (bool log_out : {false, true}) {
                const double offset = range.first, scale = range.second;
                INFO((log_out ? "log_softmax" : "softmax") << " dim " << dim << " logits " << offset << " + [-" << scale
                                                           << ", " << scale << "]");
                const int64_t d = dim < 0 ? dim + 3 : dim, n = s[size_t(d)];
                std::vector<float> v = uniform_floats(120, seed += 2, -scale, scale);
                for (float& e : v) e = float(offset + e);
                v[7] = v[8] = float(offset + scale);  // ties at the maximum in some lanes
                const std::vector<float> vg = uniform_floats(120, seed + 1);
                Tensor x = make_f32(v, s, dev, true);
                Tensor y = log_out ? log_softmax(x, dim) : softmax(x, dim);
                REQUIRE(y.shape() == s);
                y.backward(make_f32(vg, s, dev));

                std::vector<double> ry(120), gx(120);
                double y_atol = 0, y_rtol = 0, g_bound = 0;
                each_lane(s, d, [&](const std::vector<size_t>& idx) {
                    double m = -INFINITY, sum = 0;
                    for (size_t k : idx) m = std::max(m, double(v[k]));
                    for (size_t k : idx) sum += std::exp(v[k] - m);
                    const double ls = std::log(sum), e_sum = 0.5 * double(n) + 1;  // relative error of the sum
                    double gy = 0, g_sum = 0, abs_gy = 0, abs_g = 0;
                    for (size_t k : idx) {
                        const double p = std::exp(v[k] - m) / sum;
                        ry[k] = log_out ? v[k] - m - ls : p;
                        gy += vg[k] * p, abs_gy += std::fabs(vg[k] * p);
                        g_sum += vg[k], abs_g += std::fabs(vg[k]);
                    }
                    for (size_t k : idx) {
                        const double p = std::exp(v[k] - m) / sum, dx = std::fabs(v[k] - m);
                        const double rho = 0.5 * dx + e_sum + 1.5;  // relative error of p
                        if (log_out) {
                            // x - max - log(sum): the sum's relative error and ~4 roundings.
                            y_atol = std::max(y_atol, e_sum + 1);
                            y_rtol = 1.5;
                            gx[k] = vg[k] - p * g_sum;
                            const double rho_p = e_sum + 2 + 1.5 * std::fabs(ry[k]);
                            g_bound = std::max(g_bound, p * rho_p * std::fabs(g_sum) + p * 0.5 * double(n) * abs_g +
                                                            0.5 * (std::fabs(vg[k]) + std::fabs(p * g_sum) + std::fabs(gx[k])));
                        } else {
                            y_atol = std::max(y_atol, p * rho);
                            gx[k] = p * (vg[k] - gy);
                            const double e_gy = rho * abs_gy + 0.5 * double(n) * abs_gy;
                            g_bound = std::max(g_bound, p * std::fabs(vg[k] - gy) * (rho + 1) + p * e_gy);
                        }
                    }
                });
                HPT_CHECK_CLOSE(y, ref_tensor(ry, s), tol(DType::f32, y_atol, y_rtol));
                HPT_CHECK_CLOSE(x.grad(), ref_tensor(gx, s), tol(DType::f32, g_bound, 0));
                // Nothing overflows.
                for (double e : y.to_vector<double>()) REQUIRE(std::isfinite(e));
            }
        }
    }
    // A lane of equal huge logits is uniform.
    Tensor big = full({2, 8}, 1e30, DType::f32, dev);
    HPT_CHECK_CLOSE(softmax(big, 1), ref_tensor(std::vector<double>(16, 0.125), {2, 8}), tol(DType::f32, 0, 8));
    HPT_CHECK_CLOSE(log_softmax(big, 1), ref_tensor(std::vector<double>(16, -std::log(8.0)), {2, 8}),
                    tol(DType::f32, 8, 1));
}

HPT_DEVICE_TEST("cross_entropy: value and gradient, moderate and large logits", "[softmax]") {
    const int64_t N = 6, C = 10;
    const std::vector<int64_t> target = {3, 0, 9, 3, 3, 7};  // repeated classes
    uint32_t seed = 6100;
    // Logits in [-4, 4]; in [-1e4, 1e4] (a clear maximum per row); in 1e4 + [-4, 4] (large and
    // close: the log-sum-exp is not an f32 number near the logits); and 1e30 + [-4, 4]-ish.
    const std::vector<std::pair<double, double>> ranges = {{0, 4}, {0, 1e4}, {1e4, 4}, {-1e4, 4}, {1e30, 1e25}};
    for (const auto& range : ranges) {
        for (double g_out : {1.0, 2.5}) {
            const double offset = range.first, scale = range.second;
            INFO("logits " << offset << " + [-" << scale << ", " << scale << "], loss gradient " << g_out);
            std::vector<float> v = uniform_floats(N * C, seed += 2, -scale, scale);
            for (float& e : v) e = float(offset + e);
            v[1 * C + 0] = float(offset + scale);  // a row whose target is the maximum
            Tensor x = make_f32(v, {N, C}, dev, true);
            Tensor loss = cross_entropy(x, from_vector<int64_t>(target, {N}, dev));
            REQUIRE(loss.shape() == Shape{});
            loss.backward(make_f32({float(g_out)}, {}, dev));

            double L = 0, L_bound = 0, abs_terms = 0, g_bound = 0;
            std::vector<double> gx(size_t(N * C));
            for (int64_t i = 0; i < N; ++i) {
                double m = -INFINITY, sum = 0;
                for (int64_t j = 0; j < C; ++j) m = std::max(m, double(v[size_t(i * C + j)]));
                for (int64_t j = 0; j < C; ++j) sum += std::exp(v[size_t(i * C + j)] - m);
                const double lse = m + std::log(sum), r = lse - v[size_t(i * C + target[size_t(i)])];
                L += r / double(N);
                abs_terms += std::fabs(r) / double(N);
                // lse within eps/2 |lse| + the sum's error; r rounded once.
                L_bound += (0.5 * std::fabs(lse) + 0.5 * double(C) + 2 + 0.5 * std::fabs(r)) / double(N);
                for (int64_t j = 0; j < C; ++j) {
                    const double x_m = v[size_t(i * C + j)] - m, p = std::exp(x_m) / sum;
                    const double k = g_out / double(N), onehot = j == target[size_t(i)] ? 1.0 : 0.0;
                    gx[size_t(i * C + j)] = k * (p - onehot);
                    const double rho = 0.5 * std::fabs(x_m) + 0.5 * double(C) + 2.5;  // relative error of p
                    g_bound = std::max(g_bound, k * (p * rho + 0.5 * std::fabs(p - onehot)) + 0.5 * std::fabs(gx[size_t(i * C + j)]));
                }
            }
            L_bound += 0.5 * double(N + 1) * abs_terms;
            HPT_CHECK_CLOSE(loss, ref_tensor({L}, {}), tol(DType::f32, L_bound, 0));
            HPT_CHECK_CLOSE(x.grad(), ref_tensor(gx, {N, C}), tol(DType::f32, g_bound, 0));
        }
    }
}

HPT_DEVICE_TEST("l2_normalize along rows and columns, with rows clamped by eps", "[softmax]") {
    const double eps = 1e-12;
    for (int64_t dim : {1, 0, -1}) {
        INFO("dim " << dim);
        // A [5, 8] matrix (for dim 0 its transpose's layout: lanes are columns); lane 2 is zero and
        // lane 4 has a norm below eps.
        const int64_t lanes = 5, n = 8;
        const Shape s = dim == 0 ? Shape{n, lanes} : Shape{lanes, n};
        std::vector<float> lane_major = uniform_floats(lanes * n, 6200 + uint32_t(dim + 1), -2, 2);
        for (int64_t j = 0; j < n; ++j) lane_major[size_t(2 * n + j)] = 0.0f;
        for (int64_t j = 0; j < n; ++j) lane_major[size_t(4 * n + j)] *= 1e-13f;
        auto flat = [&](int64_t lane, int64_t j) { return size_t(dim == 0 ? j * lanes + lane : lane * n + j); };
        std::vector<float> v(size_t(lanes * n));
        for (int64_t l = 0; l < lanes; ++l)
            for (int64_t j = 0; j < n; ++j) v[flat(l, j)] = lane_major[size_t(l * n + j)];
        const std::vector<float> vg = uniform_floats(lanes * n, 6300);
        Tensor x = make_f32(v, s, dev, true);
        Tensor y = l2_normalize(x, dim, eps);
        y.backward(make_f32(vg, s, dev));
        const std::vector<double> got_y = y.to_vector<double>(), got_g = x.grad().to_vector<double>();
        for (int64_t l = 0; l < lanes; ++l) {
            INFO("lane " << l);
            double ss = 0;
            for (int64_t j = 0; j < n; ++j) ss += double(v[flat(l, j)]) * v[flat(l, j)];
            const double norm = std::sqrt(ss), r = std::max(norm, eps);
            const bool clamped = norm <= eps;
            CHECK(clamped == (l == 2 || l == 4));
            std::vector<double> ry(static_cast<size_t>(n)), rg(ry), ay(ry), ag(ry);
            double gy = 0, abs_gy = 0;
            for (int64_t j = 0; j < n; ++j) {
                ry[size_t(j)] = v[flat(l, j)] / r;
                gy += vg[flat(l, j)] * ry[size_t(j)], abs_gy += std::fabs(vg[flat(l, j)] * ry[size_t(j)]);
                ay[size_t(j)] = got_y[flat(l, j)], ag[size_t(j)] = got_g[flat(l, j)];
            }
            const double rho_r = clamped ? 0.0 : 0.5 * double(n) + 1.5;  // relative error of the norm
            double g_bound = 0;
            for (int64_t j = 0; j < n; ++j) {
                // Clamped: x / eps and g / eps; otherwise (g - y (g.y)) / ||x||.
                rg[size_t(j)] = clamped ? vg[flat(l, j)] / eps : (vg[flat(l, j)] - ry[size_t(j)] * gy) / r;
                const double e_gy = (rho_r + 0.5) * abs_gy + 0.5 * double(n) * abs_gy;
                g_bound = std::max(g_bound, (std::fabs(ry[size_t(j)]) * ((rho_r + 0.5) * std::fabs(gy) + e_gy) +
                                             0.5 * (std::fabs(vg[flat(l, j)]) + std::fabs(ry[size_t(j)] * gy))) / r +
                                                (rho_r + 1) * std::fabs(rg[size_t(j)]));
            }
            HPT_CHECK_CLOSE(ref_tensor(ay, {n}), ref_tensor(ry, {n}), tol(DType::f32, 0, rho_r + 1));
            HPT_CHECK_CLOSE(ref_tensor(ag, {n}), ref_tensor(rg, {n}), tol(DType::f32, g_bound, 0));
        }
    }
}
