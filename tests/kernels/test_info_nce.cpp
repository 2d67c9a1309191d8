// The fused InfoNCE and the momentum update, on every device, against references in double: the
// unfused formulation (logits [q.k | q queue^T] / T, log-sum-exp, mean) computed in loops here.
#include <catch2/catch.hpp>

#include "ssl/ops.h"
#include "tests/kernels/reference.h"
#include "tests/support/devices.h"

using namespace hpt;
using namespace hpt::test;

HPT_DEVICE_TEST("info_nce matches the unfused loss and gradients, across queue tiles", "[ssl][info_nce]") {
    // K = 9000 crosses the CPU's 4096-row tiles and the GPU's 64-row tiles and chunks, with a tail;
    // D = 128 is MoCo's feature size, D = 32 a partial tile.
    const int64_t D = GENERATE(32, 128);
    INFO("D = " << D);
    const int64_t N = 70, K = 9000;
    const double T = 0.2;
    auto unit_rows = [](std::vector<float> v, int64_t rows, int64_t d) {
        for (int64_t i = 0; i < rows; ++i) {
            double s = 0;
            for (int64_t c = 0; c < d; ++c) s += double(v[size_t(i * d + c)]) * v[size_t(i * d + c)];
            for (int64_t c = 0; c < d; ++c) v[size_t(i * d + c)] = float(v[size_t(i * d + c)] / std::sqrt(s));
        }
        return v;
    };
    const std::vector<float> qv = unit_rows(uniform_floats(N * D, 1), N, D), kv = unit_rows(uniform_floats(N * D, 2), N, D),
                             uv = unit_rows(uniform_floats(K * D, 3), K, D);
    Tensor q = make_f32(qv, {N, D}, dev, true), k = make_f32(kv, {N, D}, dev, true), u = make_f32(uv, {K, D}, dev, true);
    const Tensor loss = info_nce(q, k, u, T);
    loss.backward();

    // Reference in double.
    std::vector<double> gq(size_t(N * D), 0.0), gk(size_t(N * D), 0.0), gu(size_t(K * D), 0.0);
    double total = 0;
    std::vector<double> s(size_t(K + 1));
    for (int64_t i = 0; i < N; ++i) {
        auto dot = [&](const std::vector<float>& b, int64_t j) {
            double d = 0;
            for (int64_t c = 0; c < D; ++c) d += double(qv[size_t(i * D + c)]) * b[size_t(j * D + c)];
            return d / T;
        };
        s[0] = dot(kv, i);
        double m = s[0];
        for (int64_t j = 0; j < K; ++j) m = std::max(m, s[size_t(j + 1)] = dot(uv, j));
        double z = 0;
        for (double v : s) z += std::exp(v - m);
        const double lse = m + std::log(z);
        total += lse - s[0];
        // d loss / d s_ij = (p_ij - [j == 0]) / N
        for (int64_t j = 0; j <= K; ++j) {
            const double w = (std::exp(s[size_t(j)] - lse) - (j == 0 ? 1.0 : 0.0)) / double(N) / T;
            const std::vector<float>& b = j == 0 ? kv : uv;
            const int64_t row = j == 0 ? i : j - 1;
            for (int64_t c = 0; c < D; ++c) {
                gq[size_t(i * D + c)] += w * b[size_t(row * D + c)];
                (j == 0 ? gk[size_t(i * D + c)] : gu[size_t(row * D + c)]) += w * qv[size_t(i * D + c)];
            }
        }
    }
    // The loss sums 9001 exponentials per row: bound by the reduction length.
    HPT_CHECK_CLOSE(loss.reshape({1}), ref_tensor({total / double(N)}, {1}), tol(DType::f32, 64, 64));
    const double gmax = 1.0 / T / double(N);  // |d loss / d x| per row is at most ~2/(N T)
    const Tolerance gt{256 * 1.19e-7 * gmax, 256 * 1.19e-7};
    HPT_CHECK_CLOSE(q.grad(), ref_tensor(gq, {N, D}), gt);
    HPT_CHECK_CLOSE(k.grad(), ref_tensor(gk, {N, D}), gt);
    HPT_CHECK_CLOSE(u.grad(), ref_tensor(gu, {K, D}), gt);
    CHECK_THROWS_WITH(info_nce(q, k, u.slice(0, 0, 0), T), Catch::Contains("empty queue"));
}

HPT_DEVICE_TEST("momentum_update is target = m target + (1 - m) source, in place", "[ssl][momentum]") {
    const int64_t n = 1001;  // not a multiple of 4: the vectorised path has a tail
    const std::vector<float> tv = uniform_floats(n, 7), sv = uniform_floats(n, 8);
    Tensor t = make_f32(tv, {n}, dev), s = make_f32(sv, {n}, dev);
    momentum_update(t, s, 0.999);
    momentum_update(t, s, 0.999);
    std::vector<double> ref(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        double a = tv[size_t(i)];
        for (int r = 0; r < 2; ++r) a = 0.999 * a + 0.001 * double(sv[size_t(i)]);
        ref[size_t(i)] = a;
    }
    HPT_CHECK_CLOSE(t, ref_tensor(ref, {n}), tol(DType::f32, 4, 4));
    CHECK_THROWS_WITH(momentum_update(t, make_f32(sv, {n}, dev).slice(0, 0, n - 1), 0.5), Catch::Contains("one shape"));
}
