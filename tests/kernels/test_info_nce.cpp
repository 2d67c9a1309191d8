// The fused InfoNCE and the momentum update, on every device, against references in double: the
// unfused formulation (logits [q.k | q queue^T] / T, log-sum-exp, mean) computed in loops here.
// On CUDA, the FP32 kernels at FP32 tolerances, and the TF32 tensor-core path at bounds derived
// from TF32's rounding.
#include <cstdint>
#include <catch2/catch.hpp>
#include <cstring>

#include "engine/ops/attrs.h"
#include "engine/ops/registry.h"
#include "ssl/ops.h"
#include "tests/kernels/reference.h"
#include "tests/support/switches.h"
#include "tests/support/devices.h"

#ifdef HPT_WITH_CUDA
#include "kernels/cuda/info_nce.h"
#endif

using namespace hpt;
using namespace hpt::test;

namespace {

// Rows of unit length, like MoCo's l2-normalised features.
std::vector<float> unit_rows(std::vector<float> v, int64_t rows, int64_t d) {
    for (int64_t i = 0; i < rows; ++i) {
        double s = 0;
        for (int64_t c = 0; c < d; ++c) s += double(v[size_t(i * d + c)]) * v[size_t(i * d + c)];
        for (int64_t c = 0; c < d; ++c) v[size_t(i * d + c)] = float(v[size_t(i * d + c)] / std::sqrt(s));
    }
    return v;
}

struct Inputs {
    int64_t N, K, D;
    std::vector<float> q, k, u;
    Inputs(int64_t n, int64_t kk, int64_t d)
        : N(n), K(kk), D(d), q(unit_rows(uniform_floats(n * d, 1), n, d)), k(unit_rows(uniform_floats(n * d, 2), n, d)),
          u(unit_rows(uniform_floats(kk * d, 3), kk, d)) {}
};

// The unfused loss and gradients in double, and what the op saves for its backward: lse_i and
// o_i = sum_{j>=1} p_ij u_j (p over all K + 1 logits).
struct Reference {
    double loss = 0;
    std::vector<double> lse, o, gq, gk, gu;
    double gu_scale = 0;  // max over (j, c) of sum_i |d loss / d s_ij| |q_ic| / T: dqueue's magnitude
};

Reference reference(const Inputs& in, double T) {
    const int64_t N = in.N, K = in.K, D = in.D;
    Reference r;
    r.lse.assign(size_t(N), 0.0);
    r.o.assign(size_t(N * D), 0.0);
    r.gq.assign(size_t(N * D), 0.0);
    r.gk.assign(size_t(N * D), 0.0);
    r.gu.assign(size_t(K * D), 0.0);
    std::vector<double> gu_abs(size_t(K * D), 0.0), s(size_t(K + 1));
    double total = 0;
    for (int64_t i = 0; i < N; ++i) {
        auto dot = [&](const std::vector<float>& b, int64_t j) {
            double d = 0;
            for (int64_t c = 0; c < D; ++c) d += double(in.q[size_t(i * D + c)]) * b[size_t(j * D + c)];
            return d / T;
        };
        s[0] = dot(in.k, i);
        double m = s[0];
        for (int64_t j = 0; j < K; ++j) m = std::max(m, s[size_t(j + 1)] = dot(in.u, j));
        double z = 0;
        for (double v : s) z += std::exp(v - m);
        const double lse = m + std::log(z);
        r.lse[size_t(i)] = lse;
        total += lse - s[0];
        // d loss / d s_ij = (p_ij - [j == 0]) / N
        for (int64_t j = 0; j <= K; ++j) {
            const double p = std::exp(s[size_t(j)] - lse);
            const double w = (p - (j == 0 ? 1.0 : 0.0)) / double(N) / T;
            const std::vector<float>& b = j == 0 ? in.k : in.u;
            const int64_t row = j == 0 ? i : j - 1;
            for (int64_t c = 0; c < D; ++c) {
                const double qc = in.q[size_t(i * D + c)], bc = b[size_t(row * D + c)];
                r.gq[size_t(i * D + c)] += w * bc;
                if (j == 0) {
                    r.gk[size_t(i * D + c)] += w * qc;
                } else {
                    r.gu[size_t(row * D + c)] += w * qc;
                    gu_abs[size_t(row * D + c)] += std::abs(w * qc);
                    r.o[size_t(i * D + c)] += p * bc;
                }
            }
        }
    }
    r.loss = total / double(N);
    for (double v : gu_abs) r.gu_scale = std::max(r.gu_scale, v);
    return r;
}

}  // namespace

HPT_DEVICE_TEST("info_nce matches the unfused loss and gradients, across queue tiles", "[ssl][info_nce]") {
    const Tf32Scope fp32(false);  // FP32 on CUDA: the tolerances below are FP32's
    // K = 9000 crosses the CPU's 4096-row tiles and the GPU's 64-row tiles and chunks, with a tail.
    // On CUDA, N = 70 gives chunks of one 64-row tile and N = 256 chunks of two (the running max and
    // sum rescaled across tiles), the last chunk a single tile. D = 128 is MoCo's feature size, D =
    // 32 a partial tile, D = 36 rows that do not divide the CUDA tile loads' 256 threads. D = 64:
    // the FP32 kernels' tiles (dynamic shared memory) stay under 48 KiB, but not with their static
    // arrays, so the launch must still opt in.
    const int64_t N = GENERATE(70, 256);
    const int64_t D = GENERATE(32, 128, 36, 64);
    INFO("N = " << N << ", D = " << D);
    const Inputs in(N, 9000, D);
    const int64_t K = in.K;
    const double T = 0.2;
    Tensor q = make_f32(in.q, {N, D}, dev, true), k = make_f32(in.k, {N, D}, dev, true), u = make_f32(in.u, {K, D}, dev, true);
    const Tensor loss = info_nce(q, k, u, T);
    loss.backward();
    const Reference r = reference(in, T);
    // The loss sums 9001 exponentials per row: bound by the reduction length.
    HPT_CHECK_CLOSE(loss.reshape({1}), ref_tensor({r.loss}, {1}), tol(DType::f32, 64, 64));
    const double gmax = 1.0 / T / double(N);  // |d loss / d x| per row is at most ~2/(N T)
    const Tolerance gt{256 * 1.19e-7 * gmax, 256 * 1.19e-7};
    HPT_CHECK_CLOSE(q.grad(), ref_tensor(r.gq, {N, D}), gt);
    HPT_CHECK_CLOSE(k.grad(), ref_tensor(r.gk, {N, D}), gt);
    HPT_CHECK_CLOSE(u.grad(), ref_tensor(r.gu, {K, D}), gt);
    CHECK_THROWS_WITH(info_nce(q, k, u.slice(0, 0, 0), T), Catch::Contains("empty queue"));
    // D = 0 divided by zero in the CUDA kernels' row split (a hang or an illegal address).
    CHECK_THROWS_WITH(info_nce(q.slice(1, 0, 0), k.slice(1, 0, 0), u.slice(1, 0, 0), T), Catch::Contains("D = 0"));
}

HPT_DEVICE_TEST("info_nce saves lse and o = sum_j p_ij u_j, from which the backward takes dq", "[ssl][info_nce]") {
    const Tf32Scope fp32(false);
    const Inputs in(70, 5000, 128);
    const int64_t N = in.N, K = in.K, D = in.D;
    const double T = 0.07;  // MoCo v1's temperature: sharper weights than 0.2
    const Tensor q = make_f32(in.q, {N, D}, dev), k = make_f32(in.k, {N, D}, dev), u = make_f32(in.u, {K, D}, dev);
    const Tensor loss = empty({}, DType::f32, dev), lse = empty({N}, DType::f32, dev), o = empty({N, D}, DType::f32, dev);
    const InfoNceAttrs attrs{T};
    run_kernel(OpId::info_nce, {q, k, u}, {loss, lse, o}, &attrs);
    const Reference r = reference(in, T);
    HPT_CHECK_CLOSE(lse, ref_tensor(r.lse, {N}), tol(DType::f32, 64, 64));
    // o_ic sums K terms p_ij u_jc with sum_j p_ij < 1 and |u_jc| <= 1: the error is bounded
    // absolutely, not relative to o_ic, which is far smaller than its terms.
    const Tolerance ot{256 * 1.19e-7, 256 * 1.19e-7};
    HPT_CHECK_CLOSE(o, ref_tensor(r.o, {N, D}), ot);
}

// TF32 keeps 10 of FP32's 23 mantissa bits; cvt.rna rounds to nearest, so each rounded input is
// off by a relative u <= 2^-11. With unit rows q, k, u and FP32 accumulation over D (an ulp,
// 2^-23, per addition: the tensor cores' adds are not IEEE round-to-nearest):
//   logits:  |d s_ij| <= ((1 + u)^2 - 1 + D 2^-23) |q_i| |u_j| / T =: es  (Cauchy-Schwarz); the
//            positive logit is FP32, so lse (1-Lipschitz in the max norm) and the loss are off by
//            at most es;
//   weights: p_ij = exp(s_ij - lse_i) is off by a factor within exp(+-2 es), p_i0 by exp(+-es);
//   o_i = sum_j p_ij u_j, with p rounded again: |d o_ic| <= sum_j p_ij |u_jc| (e^{2 es} (1 + u)^2 - 1)
//            <= e^{2 es} (1 + u)^2 - 1 =: eo (sum_j p_ij < 1, |u_jc| <= 1);
//   dq = (o + (p0 - 1) k) / (N T): |d dq| <= (eo + e^{es} - 1) / (N T);  dk: (e^{es} - 1) / (N T);
//   dqueue (FP32 kernel, TF32 lse): relative e^{es} - 1 of sum_i |d loss / d s_ij| |q_ic| / T.
// Each bound adds the FP32 test's own allowance. At D = 128, T = 0.2: es = 4.9e-3, eo = 1.1e-2.
TEST_CASE("info_nce on TF32 tensor cores stays within TF32's rounding of the unfused loss [cuda]", "[ssl][info_nce][cuda]") {
    HPT_NEED_GPU();
    const Tf32Scope tf32(true);
    // N = 70 leaves a partial 64-row tile; K = 3000 a partial queue tile (3000 = 46 x 64 + 56), and
    // K = 9000 chunks of several tiles, so the running max and sum are rescaled across tiles;
    // D = 36 is no multiple of 8 (zero-padded to 40 in the kernel).
    const int64_t N = GENERATE(256, 70);
    const int64_t D = GENERATE(128, 36);
    INFO("N = " << N << ", D = " << D);
    const Inputs in(N, GENERATE(int64_t(3000), int64_t(9000)), D);  // 9000: chunks of several tiles
    const int64_t K = in.K;
    INFO("K = " << K);
    const double T = 0.2, u = std::ldexp(1.0, -11), f32 = 1.19e-7;
    const double es = ((1 + u) * (1 + u) - 1 + double(D) * std::ldexp(1.0, -23)) / T;
    const double eo = std::exp(2 * es) * (1 + u) * (1 + u) - 1;
    const Device dev = Device::cuda(0);
    Tensor q = make_f32(in.q, {N, D}, dev, true), k = make_f32(in.k, {N, D}, dev, true), uq = make_f32(in.u, {K, D}, dev, true);
    const Tensor loss = info_nce(q, k, uq, T);
    loss.backward();
    const Reference r = reference(in, T);
    const double gmax = 1.0 / T / double(N);
    const Tolerance lt{es + 64 * f32, 64 * f32};
    const Tolerance qt{(eo + std::expm1(es) + 256 * f32) * gmax, 256 * f32};
    const Tolerance kt{(std::expm1(es) + 256 * f32) * gmax, 256 * f32};
    const Tolerance ut{std::expm1(es) * r.gu_scale + 256 * f32 * gmax, 256 * f32};
    HPT_CHECK_CLOSE(loss.reshape({1}), ref_tensor({r.loss}, {1}), lt);
    HPT_CHECK_CLOSE(q.grad(), ref_tensor(r.gq, {N, D}), qt);
    HPT_CHECK_CLOSE(k.grad(), ref_tensor(r.gk, {N, D}), kt);
    HPT_CHECK_CLOSE(uq.grad(), ref_tensor(r.gu, {K, D}), ut);
    // Fixed-order sums: the same inputs give the same bits.
    const Tensor again = info_nce(q.detach(), k.detach(), uq.detach(), T);
    CHECK(again.item<double>() == loss.item<double>());
}

TEST_CASE("the pipelined TF32 InfoNCE gives the synchronous kernel's bits [cuda]", "[ssl][info_nce][cuda]") {
    HPT_NEED_GPU();
#ifdef HPT_WITH_CUDA
    const Tf32Scope tf32(true);
    // K = 3000 gives one 64-row tile per chunk; K = 9000 gives chunks of 3 tiles at N = 256 (the
    // second buffer, and the first again) and of 2 at N = 70, with a 40-row tail. D = 36: padding
    // columns the copies fill with zeros; D = 256, the largest, takes three tiles' 195 KB of shared
    // memory; D = 130 (not a multiple of 4) falls back to the synchronous kernel.
    const int64_t N = GENERATE(256, 70);
    const int64_t K = GENERATE(3000, 9000);
    const int64_t D = GENERATE(128, 36, 256, 130);
    INFO("N = " << N << ", K = " << K << ", D = " << D);
    const Inputs in(N, K, D);
    const Device dev = Device::cuda(0);
    std::vector<std::vector<uint32_t>> bits[2];
    for (const bool pipelined : {false, true}) {
        const InfoNcePipelineScope scope(pipelined);
        Tensor q = make_f32(in.q, {N, D}, dev, true), k = make_f32(in.k, {N, D}, dev, true);
        Tensor uq = make_f32(in.u, {K, D}, dev, true);
        const Tensor loss = info_nce(q, k, uq, 0.2);
        CHECK(cuda::info_nce_detail::last_partial_tf32_pipelined() == (pipelined && D % 4 == 0));
        loss.backward();
        for (const Tensor& t : {loss.reshape({1}), q.grad(), k.grad(), uq.grad()}) {
            const std::vector<float> v = t.cpu().to_vector<float>();
            std::vector<uint32_t> b(v.size());
            std::memcpy(b.data(), v.data(), v.size() * sizeof(float));
            bits[pipelined].push_back(std::move(b));
        }
    }
    const char* names[] = {"loss", "q.grad", "k.grad", "queue.grad"};
    for (size_t i = 0; i < bits[0].size(); ++i) {
        INFO(names[i]);
        CHECK(bits[0][i] == bits[1][i]);
    }
#endif
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
