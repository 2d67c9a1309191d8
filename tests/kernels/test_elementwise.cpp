// Elementwise ops: values and gradients against f64 loops, with broadcasting (0-dim scalars,
// size-1 dims, added leading dims), non-contiguous operands and outputs, unary ops, clamp, where,
// comparisons and bf16.
#include <cstdint>
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "engine/ops/attrs.h"
#include "engine/ops/ops.h"
#include "engine/ops/registry.h"
#include "tests/kernels/reference.h"
#include "tests/support/devices.h"

using namespace hpt;
using namespace hpt::test;

namespace {

struct BinaryCase {
    const char* name;
    std::function<Tensor(const Tensor&, const Tensor&)> op;
    std::function<double(double, double)> f, dfa, dfb;  // value and partial derivatives
    double lo_a, hi_a, lo_b, hi_b;
    bool signed_b;       // b = +-[lo_b, hi_b) (divisors)
    double k_fwd;        // forward: relative bound, in eps (correctly rounded: 1)
    double roundings_a;  // f32 roundings in one gradient term of a / of b
    double roundings_b;
};

const std::vector<BinaryCase>& binary_cases() {
    static const std::vector<BinaryCase> cases = {
        {"add", [](const Tensor& a, const Tensor& b) { return a + b; }, [](double a, double b) { return a + b; },
         [](double, double) { return 1.0; }, [](double, double) { return 1.0; }, -1, 1, -1, 1, false, 1, 0, 0},
        {"sub", [](const Tensor& a, const Tensor& b) { return a - b; }, [](double a, double b) { return a - b; },
         [](double, double) { return 1.0; }, [](double, double) { return -1.0; }, -1, 1, -1, 1, false, 1, 0, 0},
        {"mul", [](const Tensor& a, const Tensor& b) { return a * b; }, [](double a, double b) { return a * b; },
         [](double, double b) { return b; }, [](double a, double) { return a; }, -1, 1, -1, 1, false, 1, 1, 1},
        {"div", [](const Tensor& a, const Tensor& b) { return a / b; }, [](double a, double b) { return a / b; },
         [](double, double b) { return 1.0 / b; }, [](double a, double b) { return -a / (b * b); }, -1, 1, 0.5, 2,
         true, 1, 1, 3},
        // CUDA's powf is within 4 ulp (CPU libm's within 1); the gradient terms go through powf/logf
        // and 2-3 products.
        {"pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); },
         [](double a, double b) { return std::pow(a, b); },
         [](double a, double b) { return b * std::pow(a, b - 1.0); },
         [](double a, double b) { return std::pow(a, b) * std::log(a); }, 0.5, 2, -2, 2, false, 4, 8, 8},
    };
    return cases;
}

// y = op(a, b) on dev with a of shape sa and b of shape sb; checks y and both input gradients.
void check_binary(Device dev, const BinaryCase& c, const Shape& sa, const Shape& sb, uint32_t seed) {
    const Shape so = broadcast_shapes(sa, sb, "test");
    INFO(c.name << " " << shape_str(sa) << " with " << shape_str(sb) << " -> " << shape_str(so));
    const std::vector<float> va = uniform_floats(numel_of(sa), seed, c.lo_a, c.hi_a);
    const std::vector<float> vb = c.signed_b ? signed_floats(numel_of(sb), seed + 1, c.lo_b, c.hi_b)
                                             : uniform_floats(numel_of(sb), seed + 1, c.lo_b, c.hi_b);
    const std::vector<float> vg = uniform_floats(numel_of(so), seed + 2);
    Tensor a = make_f32(va, sa, dev, true), b = make_f32(vb, sb, dev, true);
    Tensor y = c.op(a, b);
    REQUIRE(y.shape() == so);
    REQUIRE(y.device() == dev);
    y.backward(make_f32(vg, so, dev));

    std::vector<double> ry(size_t(numel_of(so))), ga(va.size(), 0.0), gb(vb.size(), 0.0), Sa(va.size(), 0.0),
        Sb(vb.size(), 0.0);
    for (int64_t i = 0; i < numel_of(so); ++i) {
        const auto idx = unravel(i, so);
        const int64_t ia = broadcast_source(idx, sa), ib = broadcast_source(idx, sb);
        const double x = va[size_t(ia)], z = vb[size_t(ib)], g = vg[size_t(i)];
        ry[size_t(i)] = c.f(x, z);
        ga[size_t(ia)] += g * c.dfa(x, z);
        gb[size_t(ib)] += g * c.dfb(x, z);
        Sa[size_t(ia)] += std::fabs(g * c.dfa(x, z));
        Sb[size_t(ib)] += std::fabs(g * c.dfb(x, z));
    }
    HPT_CHECK_CLOSE(y, ref_tensor(ry, so), tol(DType::f32, 0, c.k_fwd));
    // Each term carries `roundings` f32 roundings, then the n terms over broadcast positions are
    // summed (within n * eps/2 * sum|terms| in f32) and rounded.
    const double na = double(numel_of(so) / numel_of(sa)), nb = double(numel_of(so) / numel_of(sb));
    HPT_CHECK_CLOSE(a.grad(), ref_tensor(ga, sa), tol(DType::f32, 0.5 * (c.roundings_a + na - 1) * max_abs(Sa), 1));
    HPT_CHECK_CLOSE(b.grad(), ref_tensor(gb, sb), tol(DType::f32, 0.5 * (c.roundings_b + nb - 1) * max_abs(Sb), 1));
}

}  // namespace

HPT_DEVICE_TEST("binary ops broadcast: values and gradients", "[elementwise]") {
    const std::vector<std::pair<Shape, Shape>> shapes = {
        {{3, 4, 5}, {3, 4, 5}},  // same shape
        {{3, 4, 5}, {5}},        // trailing vector
        {{5}, {3, 4, 5}},
        {{3, 1, 5}, {4, 1}},     // both sides broadcast
        {{2, 1, 4, 1}, {3, 1, 6}},
        {{}, {3, 4}},            // 0-dim scalar tensors on the device
        {{3, 4}, {}},
        {{}, {}},
        {{1}, {3, 4}},
        {{6, 1}, {1, 7}},
        {{2, 3, 1, 5, 1}, {4, 1, 3}},  // rank 5
    };
    uint32_t seed = 100;
    for (const BinaryCase& c : binary_cases()) {
        for (const auto& s : shapes) check_binary(dev, c, s.first, s.second, seed += 3);
    }
}

HPT_DEVICE_TEST("binary ops with a plain number", "[elementwise]") {
    const std::vector<float> vx = signed_floats(12, 7, 0.25, 4);
    Tensor x = make_f32(vx, {3, 4}, dev, true);
    const std::vector<Tensor> ys = {x + 2.5, x - 0.75, x * -3.0, x / 1.5, 2.5 + x, 1.0 - x, 3.0 * x, 2.0 / x};
    const std::vector<std::function<double(double)>> fs = {
        [](double v) { return v + 2.5; }, [](double v) { return v - 0.75; }, [](double v) { return v * -3.0; },
        [](double v) { return v / 1.5; }, [](double v) { return 2.5 + v; },  [](double v) { return 1.0 - v; },
        [](double v) { return 3.0 * v; }, [](double v) { return 2.0 / v; }};
    const std::vector<std::function<double(double)>> ds = {
        [](double) { return 1.0; },  [](double) { return 1.0; }, [](double) { return -3.0; },
        [](double) { return 1 / 1.5; }, [](double) { return 1.0; }, [](double) { return -1.0; },
        [](double) { return 3.0; }, [](double v) { return -2.0 / (v * v); }};
    Tensor total = ys[0];
    for (size_t k = 1; k < ys.size(); ++k) total = total + ys[k];
    std::vector<double> gref(vx.size(), 0.0);
    for (size_t k = 0; k < ys.size(); ++k) {
        INFO("expression " << k);
        CHECK(ys[k].device() == dev);
        std::vector<double> r(vx.size());
        for (size_t i = 0; i < vx.size(); ++i) {
            r[i] = fs[k](vx[i]);
            gref[i] += ds[k](vx[i]);
        }
        HPT_CHECK_CLOSE(ys[k], ref_tensor(r, {3, 4}), tol(DType::f32, 0, 1));
    }
    sum(total).backward();
    // Eight gradient terms d_k (x/1.5 takes one rounding, 2/x two), accumulated by autograd with
    // seven f32 additions, each rounding relative to a partial sum of at most sum_k |d_k|.
    double bound = 0;
    for (size_t i = 0; i < vx.size(); ++i) {
        const double q = 2.0 / (double(vx[i]) * vx[i]);
        bound = std::max(bound, 7 * (10.0 + 2.0 / 3.0 + q) + 2 * q + 1);
    }
    HPT_CHECK_CLOSE(x.grad(), ref_tensor(gref, {3, 4}), tol(DType::f32, 0.5 * bound, 1));
}

HPT_DEVICE_TEST("binary ops on transposed, sliced and expanded operands", "[elementwise]") {
    // a: the transpose of a [5, 4] leaf; b: every other column of a [4, 10] leaf (offset 1);
    // c: a strided column of a [5, 3] leaf, broadcast over rows; e: a row expanded with stride 0.
    const std::vector<float> vA = uniform_floats(20, 11), vB = signed_floats(40, 12, 0.5, 2),
                             vC = signed_floats(15, 13, 0.5, 2), vE = uniform_floats(5, 14), vg = uniform_floats(20, 15);
    for (const BinaryCase& bc : binary_cases()) {
        if (std::string(bc.name) == "pow") continue;  // needs positive bases; covered above
        INFO(bc.name);
        Tensor A = make_f32(vA, {5, 4}, dev, true), B = make_f32(vB, {4, 10}, dev, true);
        Tensor C = make_f32(vC, {5, 3}, dev, true), E = make_f32(vE, {1, 5}, dev, true);
        Tensor a = A.t(), b = B.slice(1, 1, 10, 2), c = C.select(1, 2), e = E.expand({4, 5});
        REQUIRE_FALSE(a.is_contiguous());
        REQUIRE_FALSE(b.is_contiguous());
        REQUIRE(e.strides()[0] == 0);
        // y = op(op(a, b), c) + e  (c broadcasts over rows; e is a stride-0 operand)
        Tensor y = bc.op(bc.op(a, b), c) + e;
        REQUIRE(y.shape() == Shape{4, 5});
        y.backward(make_f32(vg, {4, 5}, dev));

        const std::vector<double> la = view_values(widen(vA), a), lb = view_values(widen(vB), b),
                                  lc = view_values(widen(vC), c);
        std::vector<double> ry(20), gla(20), glb(20), glc(5, 0.0), gle(5, 0.0), Sc(5, 0.0);
        double fwd_bound = 0;
        for (int64_t i = 0; i < 20; ++i) {
            const int64_t col = i % 5;
            const double t = bc.f(la[size_t(i)], lb[size_t(i)]), g = vg[size_t(i)];
            const double u = bc.f(t, lc[size_t(col)]);
            ry[size_t(i)] = u + vE[size_t(col)];
            // t, u and y are each rounded once (eps/2 relative); t's error reaches y through op'.
            fwd_bound = std::max(fwd_bound, std::fabs(bc.dfa(t, lc[size_t(col)]) * t) + std::fabs(u) +
                                                std::fabs(ry[size_t(i)]));
            const double gt = g * bc.dfa(t, lc[size_t(col)]);
            gla[size_t(i)] = gt * bc.dfa(la[size_t(i)], lb[size_t(i)]);
            glb[size_t(i)] = gt * bc.dfb(la[size_t(i)], lb[size_t(i)]);
            glc[size_t(col)] += g * bc.dfb(t, lc[size_t(col)]);
            Sc[size_t(col)] += std::fabs(g * bc.dfb(t, lc[size_t(col)]));
            gle[size_t(col)] += g;
        }
        // Gradient terms pass through at most 6 f32 roundings (the chain rule's products and
        // quotients, and the rounded intermediate t that backward formulas reuse).
        HPT_CHECK_CLOSE(y, ref_tensor(ry, {4, 5}), tol(DType::f32, 0.5 * fwd_bound, 0));
        HPT_CHECK_CLOSE(A.grad(), ref_tensor(unview_grad(gla, a, 20), {5, 4}), tol(DType::f32, 0, 3));
        HPT_CHECK_CLOSE(B.grad(), ref_tensor(unview_grad(glb, b, 40), {4, 10}), tol(DType::f32, 0, 3));  // 0 off the slice
        HPT_CHECK_CLOSE(C.grad(), ref_tensor(unview_grad(glc, c, 15), {5, 3}), tol(DType::f32, 0.5 * (6 + 3) * max_abs(Sc), 1));
        HPT_CHECK_CLOSE(E.grad(), ref_tensor(gle, {1, 5}), sum_tol(4, 4.0));
    }
}

HPT_DEVICE_TEST("binary kernels write non-contiguous outputs", "[elementwise]") {
    // The front-ends allocate contiguous outputs; kernels must also honour strided ones (they are
    // used that way by in-place updates and by cat). Untouched elements must keep their value.
    const std::vector<float> va = uniform_floats(20, 21), vb = signed_floats(5, 22, 0.5, 2);
    Tensor a = make_f32(va, {4, 5}, dev), b = make_f32(vb, {5}, dev);
    const std::vector<std::pair<OpId, std::function<double(double, double)>>> ops = {
        {OpId::add, [](double x, double y) { return x + y; }},
        {OpId::mul, [](double x, double y) { return x * y; }},
        {OpId::div, [](double x, double y) { return x / y; }},
        {OpId::sub, [](double x, double y) { return x - y; }}};
    for (const auto& op : ops) {
        INFO(op_name(op.first));
        // A transposed output, and every other column of a wider one.
        Tensor base_t = full({5, 4}, 7.0, DType::f32, dev), base_s = full({4, 10}, 7.0, DType::f32, dev);
        Tensor out_t = base_t.t(), out_s = base_s.slice(1, 1, 10, 2);
        run_kernel(op.first, {a, b}, {out_t});
        run_kernel(op.first, {a, b}, {out_s});
        std::vector<double> r(20), rt(20, 7.0), rs(40, 7.0);
        for (int64_t i = 0; i < 20; ++i) r[size_t(i)] = op.second(va[size_t(i)], vb[size_t(i % 5)]);
        for (int64_t i = 0; i < 20; ++i) {
            rt[size_t((i % 5) * 4 + i / 5)] = r[size_t(i)];
            rs[size_t((i / 5) * 10 + 1 + 2 * (i % 5))] = r[size_t(i)];
        }
        HPT_CHECK_CLOSE(base_t, ref_tensor(rt, {5, 4}), tol(DType::f32, 0, 1));
        HPT_CHECK_CLOSE(base_s, ref_tensor(rs, {4, 10}), tol(DType::f32, 0, 1));
    }
    // A u8 comparison into a transposed output.
    Tensor cmp = zeros({5, 4}, DType::u8, dev);
    run_kernel(OpId::gt, {a, b}, {cmp.t()});
    const std::vector<uint8_t> got = cmp.to_vector<uint8_t>();
    for (int64_t i = 0; i < 20; ++i)
        CHECK(int(got[size_t((i % 5) * 4 + i / 5)]) == int(va[size_t(i)] > vb[size_t(i % 5)]));
}

namespace {
struct UnaryCase {
    const char* name;
    std::function<Tensor(const Tensor&)> op;
    std::function<double(double)> f, df;
    double lo, hi;
    double k_fwd, k_bwd;  // relative bounds in eps
};
}  // namespace

HPT_DEVICE_TEST("unary ops: values and gradients, contiguous and transposed", "[elementwise]") {
    const std::vector<UnaryCase> cases = {
        {"neg", [](const Tensor& x) { return -x; }, [](double x) { return -x; }, [](double) { return -1.0; }, -3, 3, 0,
         0},
        // expf/logf are within 1 ulp (<= 1 eps relative); sqrt is correctly rounded.
        {"exp", [](const Tensor& x) { return exp(x); }, [](double x) { return std::exp(x); },
         [](double x) { return std::exp(x); }, -5, 5, 2, 3},
        {"log", [](const Tensor& x) { return log(x); }, [](double x) { return std::log(x); },
         [](double x) { return 1.0 / x; }, 0.05, 20, 2, 1},
        {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double x) { return std::sqrt(x); },
         [](double x) { return 0.5 / std::sqrt(x); }, 0.01, 9, 1, 2},
        {"relu", [](const Tensor& x) { return relu(x); }, [](double x) { return x > 0 ? x : 0.0; },
         [](double x) { return x > 0 ? 1.0 : 0.0; }, -2, 2, 0, 0},
    };
    for (const UnaryCase& c : cases) {
        for (bool transposed : {false, true}) {
            INFO(c.name << (transposed ? " on a transposed view" : ""));
            std::vector<float> v = uniform_floats(63, 31, c.lo, c.hi);
            if (std::string(c.name) == "relu") v[5] = 0.0f, v[6] = -0.0f, v[40] = 0.0f;  // relu'(0) = 0
            const std::vector<float> vg = uniform_floats(63, 32);
            Tensor X = make_f32(v, {7, 9}, dev, true);
            Tensor x = transposed ? X.t() : X;
            const Shape s = x.shape();
            Tensor y = c.op(x);
            y.backward(make_f32(vg, s, dev));
            const std::vector<double> lx = view_values(widen(v), x);
            std::vector<double> ry(63), gx(63);
            for (size_t i = 0; i < 63; ++i) {
                ry[i] = c.f(lx[i]);
                gx[i] = vg[i] * c.df(lx[i]);
            }
            HPT_CHECK_CLOSE(y, ref_tensor(ry, s), tol(DType::f32, 0, c.k_fwd));
            HPT_CHECK_CLOSE(X.grad(), ref_tensor(unview_grad(gx, x, 63), {7, 9}), tol(DType::f32, 0, c.k_bwd));
        }
    }
}

HPT_DEVICE_TEST("relu_backward and clamp_backward: strided operands, NaN and -0 masks, bf16", "[elementwise]") {
    // The kernels have a dense loop and a strided one; both must give grad where the mask holds
    // (relu: output > 0; clamp: lo <= input <= hi) and 0 elsewhere, NaN and -0 counting as outside.
    std::vector<float> x = uniform_floats(48, 51, -1, 1);
    x[3] = NAN, x[7] = -0.0f, x[8] = 0.0f, x[9] = 0.25f;
    const std::vector<float> g = uniform_floats(48, 52);
    for (const DType t : {DType::f32, DType::bf16}) {
        INFO(dtype_name(t));
        const Tensor X = make_f32(x, {6, 8}, dev).to(t), G = make_f32(g, {6, 8}, dev).to(t);
        for (const bool strided : {false, true}) {
            // Mixed layouts (x column-major, grad and output row-major): no order makes all three dense.
            INFO((strided ? "x column-major, grad and output row-major" : "dense operands"));
            const Tensor xs = strided ? X.t().contiguous().t() : X, gs = G;
            Tensor relu_g = empty({6, 8}, t, dev), clamp_g = empty({6, 8}, t, dev);
            run_kernel(OpId::relu_backward, {gs, xs}, {relu_g});
            ClampAttrs a{-0.5, 0.25};
            run_kernel(OpId::clamp_backward, {gs, xs}, {clamp_g}, &a);
            const std::vector<float> xv = X.to(DType::f32).to_vector<float>(), gv = G.to(DType::f32).to_vector<float>();
            const std::vector<float> rv = relu_g.contiguous().to(DType::f32).to_vector<float>();
            const std::vector<float> cv = clamp_g.contiguous().to(DType::f32).to_vector<float>();
            for (size_t i = 0; i < 48; ++i) {
                INFO("element " << i << ": x " << xv[i] << ", grad " << gv[i]);
                CHECK(rv[i] == (xv[i] > 0 ? gv[i] : 0.0f));
                CHECK(cv[i] == (xv[i] >= -0.5f && xv[i] <= 0.25f ? gv[i] : 0.0f));
            }
        }
    }
}

HPT_DEVICE_TEST("clamp: bounds, one-sided bounds, NaN and the gradient mask", "[elementwise]") {
    const double inf = std::numeric_limits<double>::infinity();
    const std::vector<std::pair<std::optional<double>, std::optional<double>>> bounds = {
        {-0.5, 0.75}, {-0.5, std::nullopt}, {std::nullopt, 0.75}, {0.25, 0.25}};
    for (const auto& bd : bounds) {
        const double lo = bd.first.value_or(-inf), hi = bd.second.value_or(inf);
        INFO("clamp to [" << lo << ", " << hi << "]");
        std::vector<float> v = uniform_floats(48, 41, -2, 2);
        v[0] = -0.5f, v[1] = 0.75f, v[2] = 0.25f, v[3] = -2.5f, v[4] = 3.0f;  // on and beyond the bounds
        const std::vector<float> vg = uniform_floats(48, 42);
        Tensor x = make_f32(v, {6, 8}, dev, true);
        Tensor y = clamp(x, bd.first, bd.second);
        y.backward(make_f32(vg, {6, 8}, dev));
        std::vector<double> ry(48), gx(48);
        for (size_t i = 0; i < 48; ++i) {
            ry[i] = std::min(std::max(double(v[i]), lo), hi);
            gx[i] = (v[i] >= lo && v[i] <= hi) ? vg[i] : 0.0;  // inclusive at the bounds, as PyTorch
        }
        HPT_CHECK_CLOSE(y, ref_tensor(ry, {6, 8}), tol(DType::f32, 0, 0));
        HPT_CHECK_CLOSE(x.grad(), ref_tensor(gx, {6, 8}), tol(DType::f32, 0, 0));
    }
    // NaN propagates, through clamp as through relu, exp, sqrt, add.
    Tensor n = make_f32({1.0f, NAN, -3.0f}, {3}, dev);
    const std::vector<float> got = clamp(n, -1.0, 0.5).to_vector<float>();
    CHECK(got[0] == 0.5f);
    CHECK(std::isnan(got[1]));
    CHECK(got[2] == -1.0f);
    for (const Tensor& t : {relu(n), exp(n), n + 1.0, n * 0.0, clamp(n, std::nullopt, 0.0)}) CHECK(std::isnan(t.to_vector<float>()[1]));
    CHECK(relu(n).to_vector<float>()[2] == 0.0f);
}

HPT_DEVICE_TEST("where broadcasts condition and operands; gradients go to the chosen side", "[elementwise]") {
    std::vector<uint8_t> vc(15);
    for (size_t i = 0; i < vc.size(); ++i) vc[i] = uint8_t((i * 7 + 3) % 5 < 2 ? 0 : (i % 3) + 1);  // nonzero = true
    const std::vector<float> va = uniform_floats(20, 51), vb = uniform_floats(1, 52), vg = uniform_floats(60, 53);
    Tensor cond = from_vector<uint8_t>(vc, {3, 1, 5}, dev);
    Tensor a = make_f32(va, {4, 5}, dev, true), b = make_f32(vb, {}, dev, true);
    Tensor y = where(cond, a, b);
    REQUIRE(y.shape() == Shape{3, 4, 5});
    y.backward(make_f32(vg, {3, 4, 5}, dev));
    std::vector<double> ry(60), ga(20, 0.0), gb(1, 0.0);
    double Sb = 0;
    for (int64_t i = 0; i < 60; ++i) {
        const auto idx = unravel(i, {3, 4, 5});
        const bool c = vc[size_t(idx[0] * 5 + idx[2])] != 0;
        ry[size_t(i)] = c ? va[size_t(idx[1] * 5 + idx[2])] : vb[0];
        (c ? ga[size_t(idx[1] * 5 + idx[2])] : gb[0]) += vg[size_t(i)];
        if (!c) Sb += std::fabs(vg[size_t(i)]);
    }
    HPT_CHECK_CLOSE(y, ref_tensor(ry, {3, 4, 5}), tol(DType::f32, 0, 0));
    HPT_CHECK_CLOSE(a.grad(), ref_tensor(ga, {4, 5}), sum_tol(3, 3.0));  // sums of 3 terms |g| < 1
    HPT_CHECK_CLOSE(b.grad(), ref_tensor(gb, {}), sum_tol(60, Sb));
    CHECK(b.grad().shape() == Shape{});
}

HPT_DEVICE_TEST("comparisons give u8, broadcast, and treat ties and NaN as IEEE does", "[elementwise]") {
    // Small integers make ties common.
    std::vector<float> va(24), vb(6);
    for (size_t i = 0; i < va.size(); ++i) va[i] = float(int(i * 5 % 7) - 3);
    for (size_t i = 0; i < vb.size(); ++i) vb[i] = float(int(i * 3 % 5) - 2);
    va[3] = NAN, vb[1] = NAN;
    Tensor a = make_f32(va, {4, 1, 6}, dev), b = make_f32(vb, {6}, dev);
    const Shape so{4, 1, 6};
    const std::vector<std::pair<std::function<Tensor(const Tensor&, const Tensor&)>, std::function<bool(float, float)>>>
        ops = {{[](const Tensor& x, const Tensor& y) { return eq(x, y); }, [](float x, float y) { return x == y; }},
               {[](const Tensor& x, const Tensor& y) { return gt(x, y); }, [](float x, float y) { return x > y; }},
               {[](const Tensor& x, const Tensor& y) { return lt(x, y); }, [](float x, float y) { return x < y; }}};
    int k = 0;
    for (const auto& op : ops) {
        INFO("comparison " << k++);
        Tensor c = op.first(a, b);
        CHECK(c.dtype() == DType::u8);
        CHECK(c.shape() == so);
        const std::vector<uint8_t> got = c.to_vector<uint8_t>();
        int ties = 0;
        for (int64_t i = 0; i < 24; ++i) {
            const float x = va[size_t(i)], y = vb[size_t(i % 6)];
            ties += x == y;
            CHECK(int(got[size_t(i)]) == int(op.second(x, y)));
        }
        CHECK(ties > 0);
    }
    // Integer operands and a 0-dim right-hand side.
    Tensor ia = from_vector<int64_t>({-5, 0, 7, 1LL << 40}, {4}, dev), ib = from_vector<int64_t>({7}, {}, dev);
    CHECK(eq(ia, ib).to_vector<uint8_t>() == std::vector<uint8_t>{0, 0, 1, 0});
    CHECK(gt(ia, ib).to_vector<uint8_t>() == std::vector<uint8_t>{0, 0, 0, 1});
    CHECK(lt(ia, ib).to_vector<uint8_t>() == std::vector<uint8_t>{1, 1, 0, 0});
}

HPT_DEVICE_TEST("bf16 add, mul and relu compute in float and round to nearest even", "[elementwise][bf16]") {
    // Values spanning several binades, so that both rounding directions and ties occur.
    std::vector<float> fa = uniform_floats(96, 61, -8, 8), fb = uniform_floats(32, 62, -8, 8);
    std::vector<bf16> ha, hb;
    for (float f : fa) ha.push_back(bf16(f));
    for (float f : fb) hb.push_back(bf16(f));
    Tensor a = from_vector<bf16>(ha, {3, 32}, dev), b = from_vector<bf16>(hb, {32}, dev);
    const Shape s{3, 32};
    const std::vector<std::pair<Tensor, std::function<float(float, float)>>> cases = {
        {a + b, [](float x, float y) { return x + y; }},
        {a * b, [](float x, float y) { return x * y; }},
        {relu(a), [](float x, float) { return x > 0 ? x : 0.0f; }}};
    for (size_t k = 0; k < cases.size(); ++k) {
        INFO("bf16 case " << k);
        const Tensor& y = cases[k].first;
        REQUIRE(y.dtype() == DType::bf16);
        const std::vector<float> got = y.to(DType::f32).to_vector<float>();
        std::vector<double> exact(96);
        for (int64_t i = 0; i < 96; ++i) {
            const float x = float(ha[size_t(i)]), z = float(hb[size_t(i % 32)]);
            // The bf16 product/sum of two bf16 values is exact in float; one rounding to bf16.
            const float want = float(bf16(cases[k].second(x, z)));
            CHECK(got[size_t(i)] == want);
            exact[size_t(i)] = double(cases[k].second(x, z));
        }
        // The same, in the tolerance model: round-to-nearest is within half an ulp (eps/2 relative).
        HPT_CHECK_CLOSE(y, ref_tensor(exact, s), tol(DType::bf16, 0, 1));
    }
}
