// matmul (2-D and batched) and linear: values and gradients against f64 loops, with odd sizes,
// transposed, sliced (leading dimension > columns) and batch-strided operands.
//
// Bounds: a GEMM in f32 accumulates K products in some order (blocked, FMA); its error is at most
// ~K * eps/2 * sum_k |a_ik b_kj| (sum_tol), which is what each check allows.
#include <cstdint>
#include <catch2/catch.hpp>

#include <array>
#include <cmath>

#include "engine/ops/ops.h"
#include "tests/kernels/reference.h"
#include "tests/support/devices.h"

using namespace hpt;
using namespace hpt::test;

namespace {

// C = A B for row-major A [M, K] and B [K, N]; S = max_ij sum_k |a_ik b_kj|.
std::vector<double> mm_ref(const std::vector<double>& A, const std::vector<double>& B, int64_t M, int64_t K, int64_t N,
                           double* S) {
    std::vector<double> C(size_t(M * N), 0.0);
    *S = 0;
    for (int64_t i = 0; i < M; ++i) {
        for (int64_t j = 0; j < N; ++j) {
            double acc = 0, abs_acc = 0;
            for (int64_t k = 0; k < K; ++k) {
                acc += A[size_t(i * K + k)] * B[size_t(k * N + j)];
                abs_acc += std::fabs(A[size_t(i * K + k)] * B[size_t(k * N + j)]);
            }
            C[size_t(i * N + j)] = acc;
            *S = std::max(*S, abs_acc);
        }
    }
    return C;
}

std::vector<double> transpose_ref(const std::vector<double>& A, int64_t R, int64_t C) {
    std::vector<double> T(A.size());
    for (int64_t i = 0; i < R; ++i)
        for (int64_t j = 0; j < C; ++j) T[size_t(j * R + i)] = A[size_t(i * C + j)];
    return T;
}

// Slices batch b of a row-major [B, R, C] buffer.
std::vector<double> batch_of(const std::vector<double>& v, int64_t b, int64_t R, int64_t C) {
    return std::vector<double>(v.begin() + b * R * C, v.begin() + (b + 1) * R * C);
}

// Operand layouts: how a logical [R, C] (or [B, R, C]) operand is made from a leaf.
enum class Layout { contiguous, transposed, padded_rows, strided_cols, batch_strided, batch_expanded };
const char* layout_name(Layout l) {
    switch (l) {
        case Layout::contiguous: return "contiguous";
        case Layout::transposed: return "transposed";
        case Layout::padded_rows: return "rows with ld > cols";
        case Layout::strided_cols: return "every other column";
        case Layout::batch_strided: return "every other batch";
        case Layout::batch_expanded: return "batch expanded (stride 0)";
    }
    return "?";
}

struct Operand {
    Tensor leaf, view;
    std::vector<float> data;  // the leaf's values
};

// A [B, R, C] operand (B = 0: 2-D [R, C]) in the given layout.
Operand make_operand(int64_t B, int64_t R, int64_t C, Layout l, uint32_t seed, Device dev) {
    const bool batched = B > 0;
    Shape leaf_shape;
    switch (l) {
        case Layout::contiguous: leaf_shape = {R, C}; break;
        case Layout::transposed: leaf_shape = {C, R}; break;
        case Layout::padded_rows: leaf_shape = {R, C + 3}; break;
        case Layout::strided_cols: leaf_shape = {R, 2 * C}; break;
        case Layout::batch_strided: leaf_shape = {R, C}; break;
        case Layout::batch_expanded: leaf_shape = {R, C}; break;
    }
    if (batched) leaf_shape.insert(leaf_shape.begin(), l == Layout::batch_strided ? 2 * B : l == Layout::batch_expanded ? 1 : B);
    Operand o;
    o.data = uniform_floats(numel_of(leaf_shape), seed);
    o.leaf = make_f32(o.data, leaf_shape, dev, true);
    switch (l) {
        case Layout::contiguous: o.view = o.leaf; break;
        case Layout::transposed: o.view = o.leaf.transpose(-1, -2); break;
        case Layout::padded_rows: o.view = o.leaf.narrow(-1, 1, C); break;
        case Layout::strided_cols: o.view = o.leaf.slice(-1, 1, 2 * C, 2); break;
        case Layout::batch_strided: o.view = o.leaf.slice(0, 1, 2 * B, 2); break;
        case Layout::batch_expanded: o.view = o.leaf.expand({B, R, C}); break;
    }
    return o;
}

// matmul of operands in the given layouts: checks the product and both leaves' gradients.
void check_matmul(Device dev, int64_t B, int64_t M, int64_t K, int64_t N, Layout la, Layout lb, uint32_t seed) {
    INFO("matmul B=" << B << " M=" << M << " K=" << K << " N=" << N << ", a " << layout_name(la) << ", b "
                     << layout_name(lb));
    Operand a = make_operand(B, M, K, la, seed, dev), b = make_operand(B, K, N, lb, seed + 1, dev);
    Tensor y = matmul(a.view, b.view);
    const int64_t nb = std::max<int64_t>(B, 1);
    const Shape so = B ? Shape{B, M, N} : Shape{M, N};
    REQUIRE(y.shape() == so);
    const std::vector<float> vg = uniform_floats(nb * M * N, seed + 2);
    y.backward(make_f32(vg, so, dev));

    const std::vector<double> va = view_values(widen(a.data), a.view), vb = view_values(widen(b.data), b.view);
    std::vector<double> ry, ga, gb;
    double Sy = 0, Sa = 0, Sb = 0;
    for (int64_t i = 0; i < nb; ++i) {
        double s;
        const auto ai = batch_of(va, i, M, K), bi = batch_of(vb, i, K, N), gi = batch_of(widen(vg), i, M, N);
        const auto yi = mm_ref(ai, bi, M, K, N, &s);
        Sy = std::max(Sy, s);
        const auto gai = mm_ref(gi, transpose_ref(bi, K, N), M, N, K, &s);  // g b^T
        Sa = std::max(Sa, s);
        const auto gbi = mm_ref(transpose_ref(ai, M, K), gi, K, M, N, &s);  // a^T g
        Sb = std::max(Sb, s);
        ry.insert(ry.end(), yi.begin(), yi.end());
        ga.insert(ga.end(), gai.begin(), gai.end());
        gb.insert(gb.end(), gbi.begin(), gbi.end());
    }
    HPT_CHECK_CLOSE(y, ref_tensor(ry, so), sum_tol(K, Sy));
    // An expanded operand's gradient also sums over the B batches (in double, then rounded).
    const double fa = la == Layout::batch_expanded ? double(B) : 1.0, fb = lb == Layout::batch_expanded ? double(B) : 1.0;
    // (an expanded operand's gradient also sums the B batches' products: B more terms)
    HPT_CHECK_CLOSE(a.leaf.grad(), ref_tensor(unview_grad(ga, a.view, a.leaf.numel()), a.leaf.shape()),
                    sum_tol(N + int64_t(fa) - 1, Sa * fa));
    HPT_CHECK_CLOSE(b.leaf.grad(), ref_tensor(unview_grad(gb, b.view, b.leaf.numel()), b.leaf.shape()),
                    sum_tol(M + int64_t(fb) - 1, Sb * fb));
}

}  // namespace

HPT_DEVICE_TEST("matmul 2-D: odd sizes, values and gradients", "[matmul]") {
    const std::vector<std::array<int64_t, 3>> sizes = {{37, 53, 19}, {1, 1, 1}, {1, 17, 5}, {5, 1, 3},
                                                       {64, 64, 64}, {3, 200, 2}, {19, 7, 1}};
    uint32_t seed = 700;
    for (const auto& s : sizes) check_matmul(dev, 0, s[0], s[1], s[2], Layout::contiguous, Layout::contiguous, seed += 3);
}

HPT_DEVICE_TEST("matmul 2-D with transposed, padded and strided operands", "[matmul]") {
    const std::vector<Layout> layouts = {Layout::contiguous, Layout::transposed, Layout::padded_rows,
                                         Layout::strided_cols};
    uint32_t seed = 800;
    for (Layout la : layouts)
        for (Layout lb : layouts) check_matmul(dev, 0, 37, 53, 19, la, lb, seed += 3);
    // Degenerate sizes (a single row, column or inner element) in every layout.
    for (const auto& s : std::vector<std::array<int64_t, 3>>{{1, 17, 5}, {5, 1, 3}, {19, 7, 1}, {1, 1, 1}})
        for (Layout la : layouts)
            for (Layout lb : layouts) check_matmul(dev, 0, s[0], s[1], s[2], la, lb, seed += 3);
}

HPT_DEVICE_TEST("batched matmul: plain, transposed, batch-strided and broadcast operands", "[matmul]") {
    uint32_t seed = 900;
    check_matmul(dev, 3, 37, 53, 19, Layout::contiguous, Layout::contiguous, seed += 3);
    check_matmul(dev, 3, 37, 53, 19, Layout::transposed, Layout::transposed, seed += 3);
    check_matmul(dev, 3, 5, 8, 6, Layout::transposed, Layout::contiguous, seed += 3);
    check_matmul(dev, 4, 7, 9, 11, Layout::batch_strided, Layout::transposed, seed += 3);
    check_matmul(dev, 2, 6, 5, 4, Layout::contiguous, Layout::batch_strided, seed += 3);
    check_matmul(dev, 3, 7, 9, 5, Layout::batch_expanded, Layout::contiguous, seed += 3);
    check_matmul(dev, 3, 7, 9, 5, Layout::strided_cols, Layout::batch_expanded, seed += 3);
    check_matmul(dev, 1, 1, 13, 1, Layout::contiguous, Layout::transposed, seed += 3);
}

HPT_DEVICE_TEST("linear: x w^T + b for 2-D and 3-D inputs, with and without bias", "[matmul]") {
    struct Case {
        Shape x;
        int64_t out;
        bool bias, w_transposed, x_transposed;
    };
    const std::vector<Case> cases = {{{7, 13}, 5, true, false, false},    {{7, 13}, 5, false, false, false},
                                     {{2, 3, 13}, 5, true, false, false}, {{37, 53}, 19, true, true, false},
                                     {{1, 4}, 1, true, false, false},     {{4}, 3, true, false, false},
                                     {{9, 6}, 4, true, false, true},      {{9, 6}, 4, true, true, true}};
    uint32_t seed = 1000;
    for (const Case& c : cases) {
        INFO("linear x " << shape_str(c.x) << " out " << c.out << (c.bias ? " with bias" : "")
                         << (c.w_transposed ? ", weight a transposed view" : "")
                         << (c.x_transposed ? ", input a transposed view" : ""));
        const int64_t K = c.x.back(), M = numel_of(c.x) / K, N = c.out;
        const std::vector<float> vx = uniform_floats(M * K, seed += 4), vw = uniform_floats(N * K, seed + 1),
                                 vb = uniform_floats(N, seed + 2);
        // x, or the transpose of a leaf holding x^T.
        Tensor xleaf = c.x_transposed ? make_f32(to_floats(transpose_ref(widen(vx), M, K)), {K, M}, dev, true)
                                      : make_f32(vx, c.x, dev, true);
        Tensor x = c.x_transposed ? xleaf.t() : xleaf;
        // w [N, K], either a leaf or the transpose of a [K, N] leaf.
        Tensor wleaf = c.w_transposed ? make_f32(to_floats(transpose_ref(widen(vw), N, K)), {K, N}, dev, true)
                                      : make_f32(vw, {N, K}, dev, true);
        Tensor w = c.w_transposed ? wleaf.t() : wleaf;
        Tensor b = c.bias ? make_f32(vb, {N}, dev, true) : Tensor();
        Tensor y = linear(x, w, b);
        Shape so = c.x;
        so.back() = N;
        REQUIRE(y.shape() == so);
        const std::vector<float> vg = uniform_floats(M * N, seed + 3);
        y.backward(make_f32(vg, so, dev));

        double Sy, Sx, Sw;
        std::vector<double> ry = mm_ref(widen(vx), transpose_ref(widen(vw), N, K), M, K, N, &Sy);
        if (c.bias) {
            for (int64_t i = 0; i < M; ++i)
                for (int64_t j = 0; j < N; ++j) ry[size_t(i * N + j)] += vb[size_t(j)];
            Sy += 1.0;  // |b| < 1
        }
        const auto gx = mm_ref(widen(vg), widen(vw), M, N, K, &Sx);                   // g w
        const auto gw = mm_ref(transpose_ref(widen(vg), M, N), widen(vx), N, M, K, &Sw);  // g^T x
        std::vector<double> gb(size_t(N), 0.0);
        double Sb = 0;
        for (int64_t j = 0; j < N; ++j) {
            double s = 0;
            for (int64_t i = 0; i < M; ++i) gb[size_t(j)] += vg[size_t(i * N + j)], s += std::fabs(vg[size_t(i * N + j)]);
            Sb = std::max(Sb, s);
        }
        HPT_CHECK_CLOSE(y, ref_tensor(ry, so), sum_tol(K + 1, Sy));
        HPT_CHECK_CLOSE(xleaf.grad(), ref_tensor(c.x_transposed ? transpose_ref(gx, M, K) : gx, xleaf.shape()),
                        sum_tol(N, Sx));
        const std::vector<double> gw_leaf = c.w_transposed ? transpose_ref(gw, N, K) : gw;
        HPT_CHECK_CLOSE(wleaf.grad(), ref_tensor(gw_leaf, wleaf.shape()), sum_tol(M, Sw));
        if (c.bias) HPT_CHECK_CLOSE(b.grad(), ref_tensor(gb, {N}), sum_tol(M, Sb));
    }
}

HPT_DEVICE_TEST("matmul with an empty inner dimension gives zeros", "[matmul]") {
    Tensor a = zeros({3, 0}, DType::f32, dev), b = zeros({0, 4}, DType::f32, dev);
    Tensor y = matmul(a, b);
    REQUIRE(y.shape() == Shape{3, 4});
    CHECK(y.to_vector<float>() == std::vector<float>(12, 0.0f));
    Tensor w = zeros({5, 0}, DType::f32, dev), bias = make_f32(uniform_floats(5, 1100), {5}, dev);
    HPT_CHECK_CLOSE(linear(a, w, bias), ref_tensor(broadcast_ref(bias.to_vector<double>(), {5}, {3, 5}), {3, 5}),
                    tol(DType::f32, 0, 0));
}
