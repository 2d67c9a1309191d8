// CPU InfoNCE, forward and backward, over tiles of the queue. This is the specification the CUDA
// kernels are tested against.
//
// Forward: for each tile of queue rows, S = q tile^T / T by GEMM, then a per-row online
// log-sum-exp (running max m and sum s, rescaled when m grows) — the logits of one tile are the
// only ones ever stored. The same pass accumulates o_i = sum_j p_ij u_j, the softmax-weighted sum
// of the queue rows (p over all K + 1 logits, the positive's weight p_i0 not included), kept
// relative to the running max like s and rescaled with it (flash attention with V = the queue).
// o is an output of the op so that the backward needs no second pass over the queue for dq:
//   dq_i = g/(N T) * (o_i + (p_i0 - 1) k_i),   dk_i = g/(N T) * (p_i0 - 1) q_i.
// Only dqueue (which MoCo never asks for) recomputes each tile's logits, P = exp(S - lse), and
// applies dqueue_tile = P^T q / (N T) by GEMM.
#include <cstdint>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/ops/attrs.h"
#include "engine/ops/registry.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"

namespace hpt {
namespace {

constexpr int64_t kTile = 4096;

template <class T>
void forward(const KernelArgs& a) {
    const Tensor &q = a.in[0], &k = a.in[1], &queue = a.in[2];
    const int64_t N = q.size(0), D = q.size(1), K = queue.size(0);
    const double invT = 1.0 / a.attr<InfoNceAttrs>().temperature;
    const T* pq = q.data<T>();
    const T* pk = k.data<T>();
    const T* pu = queue.data<T>();
    // Row state starts with the positive logit.
    std::vector<double> m(static_cast<size_t>(N)), s(static_cast<size_t>(N), 1.0), pos(static_cast<size_t>(N));
    for (int64_t i = 0; i < N; ++i) {
        double d = 0;
        for (int64_t c = 0; c < D; ++c) d += double(pq[i * D + c]) * double(pk[i * D + c]);
        pos[size_t(i)] = m[size_t(i)] = d * invT;
    }
    // o accumulates unnormalised (relative to the row's running max), in T like the GEMMs.
    std::vector<T> S(size_t(N * std::min(K, kTile))), o(size_t(N * D), T(0));
    for (int64_t j0 = 0; j0 < K; j0 += kTile) {
        const int64_t kt = std::min(kTile, K - j0);
        cpu_gemm(false, true, N, kt, D, T(invT), pq, D, pu + j0 * D, D, T(0), S.data(), kt);
        parallel_for(N, 16, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) {
                T* row = S.data() + i * kt;
                double mx = m[size_t(i)];
                for (int64_t j = 0; j < kt; ++j) mx = std::max(mx, double(row[j]));
                const double alpha = std::exp(m[size_t(i)] - mx);
                double acc = s[size_t(i)] * alpha;
                for (int64_t j = 0; j < kt; ++j) {
                    const double p = std::exp(double(row[j]) - mx);
                    acc += p;
                    row[j] = T(p);  // the tile's weights, for o += P tile below
                }
                for (int64_t c = 0; c < D; ++c) o[size_t(i * D + c)] = T(double(o[size_t(i * D + c)]) * alpha);
                m[size_t(i)] = mx;
                s[size_t(i)] = acc;
            }
        });
        cpu_gemm(false, false, N, D, kt, T(1), S.data(), kt, pu + j0 * D, D, T(1), o.data(), D);
    }
    T* po = a.out[2].data<T>();
    for (int64_t i = 0; i < N; ++i)
        for (int64_t c = 0; c < D; ++c) po[i * D + c] = T(double(o[size_t(i * D + c)]) / s[size_t(i)]);
    T* lse = a.out[1].data<T>();
    double total = 0;
    for (int64_t i = 0; i < N; ++i) {
        const double l = m[size_t(i)] + std::log(s[size_t(i)]);
        lse[i] = T(l);
        total += l - pos[size_t(i)];
    }
    a.out[0].data<T>()[0] = T(total / double(N));
}

template <class T>
void backward(const KernelArgs& a) {
    const Tensor &g = a.in[0], &q = a.in[1], &k = a.in[2], &queue = a.in[3], &lse_t = a.in[4], &o_t = a.in[5];
    const Tensor &gq = a.out[0], &gk = a.out[1], &gu = a.out[2];
    const int64_t N = q.size(0), D = q.size(1), K = queue.size(0);
    const double invT = 1.0 / a.attr<InfoNceAttrs>().temperature;
    const double scale = double(g.data<T>()[0]) / double(N) * invT;  // d loss / d logit * d logit / d dot
    const T* pq = q.data<T>();
    const T* pk = k.data<T>();
    const T* pu = queue.data<T>();
    const T* lse = lse_t.data<T>();
    // Positive pair: d loss_i / d s_i0 = p_i0 - 1.
    std::vector<double> c0(static_cast<size_t>(N));
    for (int64_t i = 0; i < N; ++i) {
        double d = 0;
        for (int64_t c = 0; c < D; ++c) d += double(pq[i * D + c]) * double(pk[i * D + c]);
        c0[size_t(i)] = (std::exp(d * invT - double(lse[i])) - 1.0) * scale;
    }
    if (gq.defined()) {
        T* d = gq.data<T>();
        const T* o = o_t.data<T>();
        for (int64_t i = 0; i < N; ++i)
            for (int64_t c = 0; c < D; ++c)
                d[i * D + c] = T(scale * double(o[i * D + c]) + c0[size_t(i)] * double(pk[i * D + c]));
    }
    if (gk.defined()) {
        T* o = gk.data<T>();
        for (int64_t i = 0; i < N; ++i)
            for (int64_t c = 0; c < D; ++c) o[i * D + c] = T(c0[size_t(i)] * double(pq[i * D + c]));
    }
    if (!gu.defined()) return;
    std::vector<T> P(size_t(N * std::min(K, kTile)));
    for (int64_t j0 = 0; j0 < K; j0 += kTile) {
        const int64_t kt = std::min(kTile, K - j0);
        cpu_gemm(false, true, N, kt, D, T(invT), pq, D, pu + j0 * D, D, T(0), P.data(), kt);
        parallel_for(N, 16, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i)
                for (int64_t j = 0; j < kt; ++j)
                    P[size_t(i * kt + j)] = T(std::exp(double(P[size_t(i * kt + j)]) - double(lse[i])) * scale);
        });
        cpu_gemm(true, false, kt, D, N, T(1), P.data(), kt, pq, D, T(0), gu.data<T>() + j0 * D, D);
    }
}

void info_nce_kernel(const KernelArgs& a) {
    HPT_DISPATCH_FLOAT(a.in[0].dtype(), "info_nce", [&] { forward<scalar_t>(a); });
}
void info_nce_backward_kernel(const KernelArgs& a) {
    HPT_DISPATCH_FLOAT(a.in[1].dtype(), "info_nce_backward", [&] { backward<scalar_t>(a); });
}
HPT_REGISTER_KERNEL(info_nce, cpu, info_nce_kernel);
HPT_REGISTER_KERNEL(info_nce_backward, cpu, info_nce_backward_kernel);

void momentum_update_kernel(const KernelArgs& a) {
    const double m = a.attr<MomentumAttrs>().momentum;
    HPT_DISPATCH_FLOAT(a.in[0].dtype(), "momentum_update", [&] {
        scalar_t* t = a.in[0].data<scalar_t>();
        const scalar_t* s = a.in[1].data<scalar_t>();
        const scalar_t mm = scalar_t(m), om = scalar_t(1.0 - m);
        parallel_for(a.in[0].numel(), 1 << 15, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) t[i] = mm * t[i] + om * s[i];
        });
    });
}
HPT_REGISTER_KERNEL(momentum_update, cpu, momentum_update_kernel);

}  // namespace
}  // namespace hpt
