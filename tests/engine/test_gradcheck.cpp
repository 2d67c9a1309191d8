// Gradient checks: one HPT_GRADCHECK_CASE per Diff and View op of engine/ops/ops.def.
//
// Autograd's gradients are compared with central finite differences in f64 on the CPU
// (tests/support/gradcheck.h). Inputs are small; those of ops with kinks (relu, clamp, max,
// max_pool2d) are chosen away from the kinks, with distinct values where ties would matter.
// tests/engine/test_op_table.cpp fails when a Diff/View op has no case here.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "engine/autograd/grad_mode.h"
#include "engine/core/random.h"
#include "engine/ops/ops.h"
#include "ssl/ops.h"
#include "tests/support/gradcheck.h"

using namespace hpt;
using hpt::test::gradcheck;

namespace {

using Ts = std::vector<Tensor>;

// Uniform values in [lo, hi), f64, requiring grad.
Tensor uniform(const Shape& s, uint64_t seed, double lo = -1.0, double hi = 1.0) {
    Generator g(seed, 7);
    std::vector<double> v(size_t(shape_numel(s)));
    for (double& x : v) x = lo + (hi - lo) * g.next_unit();
    return from_vector<double>(v, s).requires_grad_();
}

// Values in [-hi, -lo] U [lo, hi], random signs: at least `lo` away from 0.
Tensor away_from_zero(const Shape& s, uint64_t seed, double lo = 0.1, double hi = 1.0) {
    Generator g(seed, 8);
    std::vector<double> v(size_t(shape_numel(s)));
    for (double& x : v) {
        const double m = lo + (hi - lo) * g.next_unit();
        x = g.next_unit() < 0.5 ? -m : m;
    }
    return from_vector<double>(v, s).requires_grad_();
}

// Distinct values (a shuffled ramp with steps of `step`, centred on 0): no ties for max/max-pool.
Tensor distinct(const Shape& s, uint64_t seed, double step = 0.05) {
    Generator g(seed, 9);
    const int64_t n = shape_numel(s);
    const std::vector<int64_t> p = g.permutation(n);
    std::vector<double> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[size_t(i)] = (double(p[size_t(i)]) - 0.5 * double(n)) * step;
    return from_vector<double>(v, s).requires_grad_();
}

Tensor no_grad(Tensor t) {
    t.requires_grad_(false);
    return t;
}

Tensor indices(const std::vector<int64_t>& v, const Shape& s) { return from_vector<int64_t>(v, s); }

}  // namespace

// ---------------------------------------------------------------- the checker itself

TEST_CASE("gradcheck catches a wrong gradient, kinks and a missing input", "[gradcheck][cpu]") {
    // d/dx (x * detach(x)) as autograd sees it is x; the true derivative of x^2 is 2x.
    const auto wrong = gradcheck([](const Ts& t) { return t[0] * t[0].detach(); }, Ts{uniform({2, 3}, 901, 0.5, 1.0)});
    INFO(wrong.report);
    CHECK_FALSE(wrong.ok);
    CHECK(wrong.worst_fraction > 1.0);
    CHECK_THAT(wrong.report, Catch::Contains("analytic"));

    // relu exactly at its kink for every element: all are skipped, and the check refuses them.
    const auto kinks = gradcheck([](const Ts& t) { return relu(t[0]); }, Ts{zeros({4}, DType::f64).requires_grad_()});
    INFO(kinks.report);
    CHECK_FALSE(kinks.ok);
    CHECK(kinks.kinks == 4);
    CHECK_THAT(kinks.report, Catch::Contains("kinks"));

    const auto none = gradcheck([](const Ts& t) { return t[0] * 2.0; }, Ts{zeros({2}, DType::f64)});
    CHECK_FALSE(none.ok);
    CHECK_THAT(none.report, Catch::Contains("no input requires grad"));

    CHECK_THROWS_AS(gradcheck([](const Ts& t) { return t[0]; }, Ts{zeros({2}, DType::f32).requires_grad_()}), hpt::Error);

    const auto right = gradcheck([](const Ts& t) { return t[0] * t[0]; }, Ts{uniform({2, 3}, 902)});
    INFO(right.report);
    CHECK(right.ok);
    CHECK(right.checked == 6);
}

// ---------------------------------------------------------------- elementwise, broadcasting

HPT_GRADCHECK_CASE(add) {
    SECTION("same shape") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return add(t[0], t[1]); }, (Ts{uniform({2, 3}, 1), uniform({2, 3}, 2)}));
    }
    SECTION("both sides broadcast: [3,1,4] + [2,1]") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return add(t[0], t[1]); },
                              (Ts{uniform({3, 1, 4}, 3), uniform({2, 1}, 4)}));
    }
    SECTION("a 0-dim operand") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return add(t[0], t[1]); }, (Ts{uniform({}, 5), uniform({2, 3}, 6)}));
    }
    SECTION("only one input requires grad") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return t[0] + t[1]; },
                              (Ts{uniform({4, 1}, 7), no_grad(uniform({1, 3}, 8))}));
    }
}

HPT_GRADCHECK_CASE(sub) {
    SECTION("same shape") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return sub(t[0], t[1]); }, (Ts{uniform({2, 3}, 11), uniform({2, 3}, 12)}));
    }
    SECTION("both sides broadcast: [2,1,3] - [4,1]") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return sub(t[0], t[1]); },
                              (Ts{uniform({2, 1, 3}, 13), uniform({4, 1}, 14)}));
    }
    SECTION("number minus tensor") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return 2.0 - t[0]; }, (Ts{uniform({5}, 15)}));
    }
}

HPT_GRADCHECK_CASE(mul) {
    SECTION("same shape") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return mul(t[0], t[1]); }, (Ts{uniform({2, 3}, 21), uniform({2, 3}, 22)}));
    }
    SECTION("both sides broadcast: [3,1,2] * [4,1]") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return mul(t[0], t[1]); },
                              (Ts{uniform({3, 1, 2}, 23), uniform({4, 1}, 24)}));
    }
    SECTION("the same tensor on both sides") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return mul(t[0], t[0]); }, (Ts{uniform({2, 3}, 25)}));
    }
}

HPT_GRADCHECK_CASE(div) {
    SECTION("same shape, divisor away from 0") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return div(t[0], t[1]); },
                              (Ts{uniform({2, 3}, 31), away_from_zero({2, 3}, 32, 0.5, 2.0)}));
    }
    SECTION("both sides broadcast: [1,3] / [2,1]") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return div(t[0], t[1]); },
                              (Ts{uniform({1, 3}, 33), away_from_zero({2, 1}, 34, 0.5, 2.0)}));
    }
    SECTION("number over tensor") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return 1.5 / t[0]; }, (Ts{away_from_zero({4}, 35, 0.5, 2.0)}));
    }
}

HPT_GRADCHECK_CASE(pow) {
    SECTION("tensor exponent, both sides broadcast: [3,1] ^ [1,4]") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return pow(t[0], t[1]); },
                              (Ts{uniform({3, 1}, 41, 0.5, 2.0), uniform({1, 4}, 42, -2.0, 2.0)}));
    }
    SECTION("number exponent, negative base") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return pow(t[0], 3.0); }, (Ts{uniform({2, 3}, 43)}));
    }
    SECTION("fractional exponent") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return pow(t[0], 0.5); }, (Ts{uniform({5}, 44, 0.5, 2.0)}));
    }
}

HPT_GRADCHECK_CASE(neg) {
    HPT_REQUIRE_GRADCHECK([](const Ts& t) { return neg(t[0]); }, (Ts{uniform({2, 3}, 51)}));
}

HPT_GRADCHECK_CASE(exp) {
    HPT_REQUIRE_GRADCHECK([](const Ts& t) { return exp(t[0]); }, (Ts{uniform({2, 3}, 52, -2.0, 2.0)}));
}

HPT_GRADCHECK_CASE(log) {
    HPT_REQUIRE_GRADCHECK([](const Ts& t) { return log(t[0]); }, (Ts{uniform({2, 3}, 53, 0.2, 3.0)}));
}

HPT_GRADCHECK_CASE(sqrt) {
    HPT_REQUIRE_GRADCHECK([](const Ts& t) { return sqrt(t[0]); }, (Ts{uniform({2, 3}, 54, 0.2, 3.0)}));
}

HPT_GRADCHECK_CASE(relu) {
    // Both signs, at least 0.1 from the kink at 0.
    HPT_REQUIRE_GRADCHECK([](const Ts& t) { return relu(t[0]); }, (Ts{away_from_zero({3, 4}, 61)}));
}

HPT_GRADCHECK_CASE(clamp) {
    // Values in steps of 0.05 offset by 0.025 never sit on the bounds -0.3 / 0.4.
    const auto x = [] {
        Tensor t = distinct({4, 5}, 62);
        NoGradGuard ng;
        t.add_(scalar_tensor(0.0125, DType::f64));
        return t;
    };
    SECTION("both bounds") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return clamp(t[0], -0.3, 0.4); }, (Ts{x()}));
    }
    SECTION("lower bound only") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return clamp(t[0], -0.3, std::nullopt); }, (Ts{x()}));
    }
    SECTION("upper bound only") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return clamp(t[0], std::nullopt, 0.4); }, (Ts{x()}));
    }
}

HPT_GRADCHECK_CASE(where) {
    const Tensor cond = from_vector<uint8_t>({1, 0, 0, 1, 1, 0}, {2, 3});
    SECTION("same shapes") {
        HPT_REQUIRE_GRADCHECK([cond](const Ts& t) { return where(cond, t[0], t[1]); },
                              (Ts{uniform({2, 3}, 71), uniform({2, 3}, 72)}));
    }
    SECTION("both branches broadcast: [2,1] and [3]") {
        HPT_REQUIRE_GRADCHECK([cond](const Ts& t) { return where(cond, t[0], t[1]); },
                              (Ts{uniform({2, 1}, 73), uniform({3}, 74)}));
    }
    SECTION("the condition broadcasts: [3] against [2,3]") {
        const Tensor c1 = from_vector<uint8_t>({0, 1, 1}, {3});
        HPT_REQUIRE_GRADCHECK([c1](const Ts& t) { return where(c1, t[0], t[1]); },
                              (Ts{uniform({2, 3}, 75), uniform({2, 3}, 76)}));
    }
}

HPT_GRADCHECK_CASE(copy) {
    SECTION("clone") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return t[0].clone(); }, (Ts{uniform({2, 3}, 81)}));
    }
    SECTION("contiguous() of a transposed view") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return t[0].t().contiguous() * 2.0; }, (Ts{uniform({3, 4}, 82)}));
    }
    SECTION("reshape of a non-viewable layout copies") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return t[0].permute({1, 0, 2}).reshape({3, 4}); },
                              (Ts{uniform({2, 3, 2}, 83)}));
    }
}

// ---------------------------------------------------------------- reductions

HPT_GRADCHECK_CASE(sum) {
    SECTION("all dims") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return sum(t[0]); }, (Ts{uniform({2, 3, 4}, 91)}));
    }
    SECTION("dims {0, 2}") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return sum(t[0], {0, 2}); }, (Ts{uniform({2, 3, 4}, 92)}));
    }
    SECTION("dims {0, 2}, keepdim") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return sum(t[0], {0, 2}, true); }, (Ts{uniform({2, 3, 4}, 93)}));
    }
    SECTION("dims {-1, 1} of a 4-D tensor, keepdim") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return sum(t[0], {-1, 1}, true); }, (Ts{uniform({2, 3, 2, 3}, 94)}));
    }
    SECTION("innermost dim of a transposed view") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return sum(t[0].t(), {1}); }, (Ts{uniform({3, 4}, 95)}));
    }
}

HPT_GRADCHECK_CASE(mean) {
    SECTION("all dims") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return mean(t[0]); }, (Ts{uniform({2, 3, 4}, 101)}));
    }
    SECTION("dims {1, 2}") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return mean(t[0], {1, 2}); }, (Ts{uniform({2, 3, 4}, 102)}));
    }
    SECTION("dims {0, 2}, keepdim") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return mean(t[0], {0, 2}, true); }, (Ts{uniform({2, 3, 4}, 103)}));
    }
    SECTION("dim 0 of a 4-D tensor") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return mean(t[0], {0}); }, (Ts{uniform({3, 2, 2, 2}, 104)}));
    }
}

HPT_GRADCHECK_CASE(max) {
    SECTION("along dim 1") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return max(t[0], 1).first; }, (Ts{distinct({3, 4}, 111)}));
    }
    SECTION("along dim 0 of a 3-D tensor, keepdim") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return max(t[0], 0, true).first; }, (Ts{distinct({3, 2, 4}, 112)}));
    }
    SECTION("along the last dim (-1)") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return max(t[0], -1).first; }, (Ts{distinct({2, 3, 5}, 113)}));
    }
}

// ---------------------------------------------------------------- linear algebra, convolution

HPT_GRADCHECK_CASE(matmul) {
    SECTION("2-D") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return matmul(t[0], t[1]); }, (Ts{uniform({3, 4}, 121), uniform({4, 5}, 122)}));
    }
    SECTION("2-D with transposed operands") {
        // a is stored [K, M], b [N, K]: both reach GEMM as column-major views.
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return matmul(t[0].t(), t[1].t()); },
                              (Ts{uniform({4, 3}, 123), uniform({5, 4}, 124)}));
    }
    SECTION("batched") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return matmul(t[0], t[1]); },
                              (Ts{uniform({2, 3, 4}, 125), uniform({2, 4, 2}, 126)}));
    }
    SECTION("batched with transposed operands") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return matmul(t[0].transpose(1, 2), t[1].transpose(1, 2)); },
                              (Ts{uniform({2, 4, 3}, 127), uniform({2, 2, 4}, 128)}));
    }
    SECTION("batched with a permuted (non-GEMM-ready) operand") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return matmul(t[0].permute({1, 0, 2}), t[1]); },
                              (Ts{uniform({3, 2, 4}, 129), uniform({2, 4, 2}, 130)}));
    }
    SECTION("vector-like shapes: [1,K] x [K,1]") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return matmul(t[0], t[1]); }, (Ts{uniform({1, 4}, 131), uniform({4, 1}, 132)}));
    }
}

HPT_GRADCHECK_CASE(linear) {
    SECTION("with bias") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return linear(t[0], t[1], t[2]); },
                              (Ts{uniform({3, 4}, 141), uniform({5, 4}, 142), uniform({5}, 143)}));
    }
    SECTION("without bias") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return linear(t[0], t[1]); }, (Ts{uniform({3, 4}, 144), uniform({2, 4}, 145)}));
    }
    SECTION("3-D input") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return linear(t[0], t[1], t[2]); },
                              (Ts{uniform({2, 3, 4}, 146), uniform({5, 4}, 147), uniform({5}, 148)}));
    }
    SECTION("transposed weight view") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return linear(t[0], t[1].t(), t[2]); },
                              (Ts{uniform({3, 4}, 149), uniform({4, 2}, 150), uniform({2}, 151)}));
    }
}

HPT_GRADCHECK_CASE(conv2d) {
    const auto check = [](const Conv2dAttrs& p, const Shape& xs, const Shape& ws, bool bias, uint64_t seed) {
        Ts in{uniform(xs, seed), uniform(ws, seed + 1)};
        if (bias) in.push_back(uniform({ws[0]}, seed + 2));
        HPT_REQUIRE_GRADCHECK(
            [p](const Ts& t) { return conv2d(t[0], t[1], t.size() > 2 ? t[2] : Tensor(), p); }, in);
    };
    SECTION("plain 3x3, with bias") { check({}, {2, 2, 5, 5}, {3, 2, 3, 3}, true, 160); }
    SECTION("stride 2, no bias, non-square input") {
        Conv2dAttrs p;
        p.stride[0] = p.stride[1] = 2;
        check(p, {1, 2, 5, 7}, {2, 2, 3, 3}, false, 163);
    }
    SECTION("padding 1, non-square kernel and input") {
        Conv2dAttrs p;
        p.padding[0] = p.padding[1] = 1;
        check(p, {2, 2, 4, 6}, {3, 2, 3, 2}, true, 166);
    }
    SECTION("dilation 2 with padding 2") {
        Conv2dAttrs p;
        p.dilation[0] = p.dilation[1] = 2;
        p.padding[0] = p.padding[1] = 2;
        check(p, {1, 2, 5, 6}, {2, 2, 3, 3}, true, 169);
    }
    SECTION("groups 2, with and without bias") {
        Conv2dAttrs p;
        p.groups = 2;
        p.padding[0] = 1;
        check(p, {2, 4, 4, 5}, {4, 2, 3, 3}, true, 172);
        check(p, {1, 4, 3, 4}, {2, 2, 2, 2}, false, 175);
    }
    SECTION("everything at once: stride (2,1), padding (1,0), dilation (1,2), groups 2") {
        Conv2dAttrs p;
        p.stride[0] = 2;
        p.padding[0] = 1;
        p.dilation[1] = 2;
        p.groups = 2;
        check(p, {2, 2, 5, 6}, {4, 1, 3, 2}, true, 178);
    }
    SECTION("1x1 kernel") { check({}, {2, 3, 3, 2}, {2, 3, 1, 1}, true, 181); }
}

// ---------------------------------------------------------------- normalisation, pooling, losses

HPT_GRADCHECK_CASE(batchnorm2d) {
    SECTION("training, one group, with gamma and beta") {
        BatchNormAttrs p;
        HPT_REQUIRE_GRADCHECK([p](const Ts& t) { return batchnorm2d(t[0], t[1], t[2], Tensor(), Tensor(), p); },
                              (Ts{uniform({4, 3, 2, 3}, 191), uniform({3}, 192, 0.5, 1.5), uniform({3}, 193)}));
    }
    SECTION("training, one group, no gamma/beta, with running statistics") {
        BatchNormAttrs p;
        const Tensor rm = zeros({3}, DType::f64), rv = ones({3}, DType::f64);
        HPT_REQUIRE_GRADCHECK(([p, rm, rv](const Ts& t) { return batchnorm2d(t[0], Tensor(), Tensor(), rm, rv, p); }),
                              (Ts{uniform({3, 3, 2, 2}, 194)}));
    }
    SECTION("training, ghost batchnorm with 2 groups") {
        BatchNormAttrs p;
        p.groups = 2;
        HPT_REQUIRE_GRADCHECK([p](const Ts& t) { return batchnorm2d(t[0], t[1], t[2], Tensor(), Tensor(), p); },
                              (Ts{uniform({4, 3, 2, 3}, 195), uniform({3}, 196, 0.5, 1.5), uniform({3}, 197)}));
    }
    SECTION("training, ghost batchnorm with 3 groups of 1x1 spatial planes") {
        BatchNormAttrs p;
        p.groups = 3;
        HPT_REQUIRE_GRADCHECK([p](const Ts& t) { return batchnorm2d(t[0], t[1], t[2], Tensor(), Tensor(), p); },
                              (Ts{uniform({6, 2, 1, 1}, 198), uniform({2}, 199, 0.5, 1.5), uniform({2}, 200)}));
    }
    SECTION("eval mode uses the running statistics") {
        BatchNormAttrs p;
        p.training = false;
        const Tensor rm = from_vector<double>({0.1, -0.2, 0.3}), rv = from_vector<double>({0.5, 1.5, 2.0});
        HPT_REQUIRE_GRADCHECK(([p, rm, rv](const Ts& t) { return batchnorm2d(t[0], t[1], t[2], rm, rv, p); }),
                              (Ts{uniform({2, 3, 2, 3}, 201), uniform({3}, 202, 0.5, 1.5), uniform({3}, 203)}));
    }
    SECTION("training, 2 groups, a residual added and the sum through a ReLU") {
        BatchNormAttrs p;
        p.groups = 2, p.relu = true;
        HPT_REQUIRE_GRADCHECK(
            [p](const Ts& t) { return batchnorm2d(t[0], t[1], t[2], Tensor(), Tensor(), p, t[3]); },
            (Ts{uniform({4, 3, 2, 3}, 207), uniform({3}, 208, 0.5, 1.5), uniform({3}, 209), uniform({4, 3, 2, 3}, 210)}));
    }
    SECTION("eval mode through a ReLU, no residual") {
        BatchNormAttrs p;
        p.training = false, p.relu = true;
        const Tensor rm = from_vector<double>({0.1, -0.2, 0.3}), rv = from_vector<double>({0.5, 1.5, 2.0});
        HPT_REQUIRE_GRADCHECK(([p, rm, rv](const Ts& t) { return batchnorm2d(t[0], t[1], t[2], rm, rv, p); }),
                              (Ts{uniform({2, 3, 2, 3}, 211), uniform({3}, 212, 0.5, 1.5), uniform({3}, 213)}));
    }
    SECTION("eval mode ignores groups") {
        BatchNormAttrs p;
        p.training = false;
        p.groups = 2;
        const Tensor rm = from_vector<double>({0.1, -0.2}), rv = from_vector<double>({0.5, 1.5});
        HPT_REQUIRE_GRADCHECK(([p, rm, rv](const Ts& t) { return batchnorm2d(t[0], t[1], t[2], rm, rv, p); }),
                              (Ts{uniform({3, 2, 2, 2}, 204), uniform({2}, 205, 0.5, 1.5), uniform({2}, 206)}));
    }
}

HPT_GRADCHECK_CASE(max_pool2d) {
    SECTION("2x2, stride 2") {
        Pool2dAttrs p;
        HPT_REQUIRE_GRADCHECK([p](const Ts& t) { return max_pool2d(t[0], p); }, (Ts{distinct({2, 2, 4, 6}, 211)}));
    }
    SECTION("3x3, stride 2, padding 1 (overlapping windows), non-square input") {
        Pool2dAttrs p;
        p.kernel[0] = p.kernel[1] = 3;
        p.padding[0] = p.padding[1] = 1;
        HPT_REQUIRE_GRADCHECK([p](const Ts& t) { return max_pool2d(t[0], p); }, (Ts{distinct({2, 2, 5, 6}, 212)}));
    }
    SECTION("3x2 kernel, stride (1,2), padding (1,0)") {
        Pool2dAttrs p;
        p.kernel[0] = 3, p.kernel[1] = 2;
        p.stride[0] = 1, p.stride[1] = 2;
        p.padding[0] = 1;
        HPT_REQUIRE_GRADCHECK([p](const Ts& t) { return max_pool2d(t[0], p); }, (Ts{distinct({1, 2, 4, 5}, 213)}));
    }
}

HPT_GRADCHECK_CASE(avg_pool2d) {
    SECTION("2x2, stride 2, no padding") {
        Pool2dAttrs p;
        HPT_REQUIRE_GRADCHECK([p](const Ts& t) { return avg_pool2d(t[0], p); }, (Ts{uniform({2, 2, 4, 5}, 221)}));
    }
    for (bool include : {true, false}) {
        DYNAMIC_SECTION("3x3, stride 2, padding 1, count_include_pad=" << include) {
            Pool2dAttrs p;
            p.kernel[0] = p.kernel[1] = 3;
            p.padding[0] = p.padding[1] = 1;
            p.count_include_pad = include;
            HPT_REQUIRE_GRADCHECK([p](const Ts& t) { return avg_pool2d(t[0], p); }, (Ts{uniform({2, 2, 5, 6}, 222)}));
        }
        DYNAMIC_SECTION("3x2 kernel, stride 1, padding (1,1), count_include_pad=" << include) {
            Pool2dAttrs p;
            p.kernel[0] = 3, p.kernel[1] = 2;
            p.stride[0] = p.stride[1] = 1;
            p.padding[0] = p.padding[1] = 1;
            p.count_include_pad = include;
            HPT_REQUIRE_GRADCHECK([p](const Ts& t) { return avg_pool2d(t[0], p); }, (Ts{uniform({1, 2, 4, 3}, 223)}));
        }
    }
}

HPT_GRADCHECK_CASE(adaptive_avg_pool2d) {
    SECTION("5x7 -> 3x2 (sizes that do not divide: overlapping bins)") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return adaptive_avg_pool2d(t[0], 3, 2); }, (Ts{uniform({2, 2, 5, 7}, 231)}));
    }
    SECTION("4x6 -> 1x1 (global average pool)") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return adaptive_avg_pool2d(t[0], 1, 1); }, (Ts{uniform({2, 3, 4, 6}, 232)}));
    }
    SECTION("3x2 -> 4x5 (output larger than input)") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return adaptive_avg_pool2d(t[0], 4, 5); }, (Ts{uniform({1, 2, 3, 2}, 233)}));
    }
}

HPT_GRADCHECK_CASE(softmax) {
    SECTION("dim 1") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return softmax(t[0], 1); }, (Ts{uniform({3, 5}, 241, -2.0, 2.0)}));
    }
    SECTION("dim 0 of a 3-D tensor") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return softmax(t[0], 0); }, (Ts{uniform({3, 2, 4}, 242, -2.0, 2.0)}));
    }
    SECTION("dim -1 of a transposed view") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return softmax(t[0].t(), -1); }, (Ts{uniform({4, 3}, 243, -2.0, 2.0)}));
    }
}

HPT_GRADCHECK_CASE(log_softmax) {
    SECTION("dim 1") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return log_softmax(t[0], 1); }, (Ts{uniform({3, 5}, 251, -2.0, 2.0)}));
    }
    SECTION("dim 1 of a 3-D tensor") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return log_softmax(t[0], 1); }, (Ts{uniform({2, 3, 4}, 252, -2.0, 2.0)}));
    }
}

HPT_GRADCHECK_CASE(cross_entropy) {
    SECTION("gradient w.r.t. the logits") {
        const Tensor target = indices({2, 0, 4, 2}, {4});
        HPT_REQUIRE_GRADCHECK([target](const Ts& t) { return cross_entropy(t[0], target); },
                              (Ts{uniform({4, 5}, 261, -2.0, 2.0)}));
    }
    SECTION("logits from a transposed view, scaled loss") {
        const Tensor target = indices({1, 0, 2}, {3});
        HPT_REQUIRE_GRADCHECK([target](const Ts& t) { return cross_entropy(t[0].t(), target) * 3.0; },
                              (Ts{uniform({3, 3}, 262, -2.0, 2.0)}));
    }
}

HPT_GRADCHECK_CASE(info_nce) {
    SECTION("all three inputs: queries, keys and the queue") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return info_nce(t[0], t[1], t[2], 0.2); },
                              (Ts{uniform({3, 4}, 281), uniform({3, 4}, 282), uniform({5, 4}, 283)}));
    }
    SECTION("queries only, as MoCo uses it, with normalised inputs") {
        const Tensor k = no_grad(l2_normalize(uniform({4, 3}, 284), 1).detach());
        const Tensor queue = no_grad(l2_normalize(uniform({7, 3}, 285), 1).detach());
        const auto f = [k, queue](const Ts& t) { return info_nce(l2_normalize(t[0], 1), k, queue, 0.07); };
        HPT_REQUIRE_GRADCHECK(f, (Ts{uniform({4, 3}, 286)}));
    }
}

HPT_GRADCHECK_CASE(l2_normalize) {
    SECTION("along dim 1") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return l2_normalize(t[0], 1); }, (Ts{uniform({3, 4}, 271)}));
    }
    SECTION("along dim 0") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return l2_normalize(t[0], 0); }, (Ts{uniform({3, 4}, 272)}));
    }
    SECTION("along the middle dim of a 3-D tensor") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return l2_normalize(t[0], 1); }, (Ts{uniform({2, 3, 2}, 273)}));
    }
}

// ---------------------------------------------------------------- joining and indexing

HPT_GRADCHECK_CASE(cat) {
    SECTION("3 tensors along dim 1") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return cat({t[0], t[1], t[2]}, 1); },
                              (Ts{uniform({2, 1, 3}, 281), uniform({2, 3, 3}, 282), uniform({2, 2, 3}, 283)}));
    }
    SECTION("along dim 0, one input without grad") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return cat({t[0], t[1], t[2]}, 0); },
                              (Ts{uniform({2, 3}, 284), no_grad(uniform({1, 3}, 285)), uniform({3, 3}, 286)}));
    }
    SECTION("along the last dim, a transposed input") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return cat({t[0].t(), t[1]}, -1); },
                              (Ts{uniform({2, 3}, 287), uniform({3, 4}, 288)}));
    }
}

HPT_GRADCHECK_CASE(index_select) {
    SECTION("dim 0 with repeated indices") {
        const Tensor idx = indices({2, 0, 2, 2, 3}, {5});
        HPT_REQUIRE_GRADCHECK([idx](const Ts& t) { return index_select(t[0], 0, idx); }, (Ts{uniform({4, 3}, 291)}));
    }
    SECTION("dim 1 of a 3-D tensor with repeated indices") {
        const Tensor idx = indices({1, 1, 0}, {3});
        HPT_REQUIRE_GRADCHECK([idx](const Ts& t) { return index_select(t[0], 1, idx); }, (Ts{uniform({2, 3, 2}, 292)}));
    }
}

HPT_GRADCHECK_CASE(gather) {
    SECTION("dim 1, repeated indices, fewer rows than the input") {
        const Tensor idx = indices({0, 0, 3, 2, 1, 1, 2, 0}, {2, 4});
        HPT_REQUIRE_GRADCHECK([idx](const Ts& t) { return gather(t[0], 1, idx); }, (Ts{uniform({3, 4}, 301)}));
    }
    SECTION("dim 0") {
        const Tensor idx = indices({2, 0, 1, 1, 2, 2}, {2, 3});
        HPT_REQUIRE_GRADCHECK([idx](const Ts& t) { return gather(t[0], 0, idx); }, (Ts{uniform({3, 3}, 302)}));
    }
    SECTION("dim 1 of a 3-D tensor") {
        const Tensor idx = indices({1, 0, 0, 0, 1, 1, 0, 1}, {2, 2, 2});
        HPT_REQUIRE_GRADCHECK([idx](const Ts& t) { return gather(t[0], 1, idx); }, (Ts{uniform({2, 3, 2}, 303)}));
    }
}

// ---------------------------------------------------------------- views

HPT_GRADCHECK_CASE(view) {
    SECTION("view and reshape with -1") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return t[0].view({3, -1}) * 2.0; }, (Ts{uniform({2, 3, 2}, 311)}));
    }
    SECTION("flatten, unsqueeze and squeeze") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return t[0].flatten(1).unsqueeze(0).squeeze(0); },
                              (Ts{uniform({2, 3, 2}, 312)}));
    }
    SECTION("view of a sliced (non-contiguous) tensor") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return t[0].slice(2, 1, 3).view({6, 2}); }, (Ts{uniform({2, 3, 4}, 313)}));
    }
}

HPT_GRADCHECK_CASE(permute) {
    SECTION("3-D permutation") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return t[0].permute({2, 0, 1}); }, (Ts{uniform({2, 3, 4}, 321)}));
    }
    SECTION("transpose feeding an elementwise op") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return t[0].transpose(0, 1) * t[1]; },
                              (Ts{uniform({3, 2}, 322), uniform({2, 3}, 323)}));
    }
}

HPT_GRADCHECK_CASE(slice) {
    SECTION("a range of dim 1") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return t[0].slice(1, 1, 3); }, (Ts{uniform({2, 4}, 331)}));
    }
    SECTION("with step 2 and a negative start") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return t[0].slice(0, -5, 5, 2); }, (Ts{uniform({6, 2}, 332)}));
    }
    SECTION("select, narrow and split") {
        HPT_REQUIRE_GRADCHECK(
            [](const Ts& t) {
                auto parts = split(t[0], 2, 1);
                return parts[0].select(0, 1) * 2.0 + parts[1].narrow(0, 0, 1).squeeze(0) * 3.0;
            },
            (Ts{uniform({3, 4}, 333)}));
    }
}

HPT_GRADCHECK_CASE(expand) {
    SECTION("size-1 dim and a new leading dim") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return t[0].expand({2, 3, 4}); }, (Ts{uniform({3, 1}, 341)}));
    }
    SECTION("-1 keeps a size") {
        HPT_REQUIRE_GRADCHECK([](const Ts& t) { return t[0].expand({-1, 3}) * t[1]; },
                              (Ts{uniform({2, 1}, 342), uniform({2, 3}, 343)}));
    }
}
