// Reductions: sum and mean over every combination of dims of a 4-D tensor (contiguous and not),
// long reductions, i64 sums, and max/argmax with ties and NaN — values and gradients against f64 loops.
#include <cstdint>
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "engine/ops/ops.h"
#include "tests/kernels/reference.h"
#include "tests/support/devices.h"

using namespace hpt;
using namespace hpt::test;

namespace {

// The output position (row-major, in the keepdim shape) that input element `idx` reduces into.
int64_t reduced_index(const std::vector<int64_t>& idx, const Shape& s, const std::vector<bool>& red) {
    int64_t o = 0;
    for (size_t d = 0; d < s.size(); ++d) o = o * (red[d] ? 1 : s[d]) + (red[d] ? 0 : idx[d]);
    return o;
}

Shape reduced_shape(const Shape& s, const std::vector<bool>& red, bool keepdim) {
    Shape o;
    for (size_t d = 0; d < s.size(); ++d) {
        if (!red[d]) o.push_back(s[d]);
        else if (keepdim) o.push_back(1);
    }
    return o;
}

}  // namespace

HPT_DEVICE_TEST("sum and mean over every combination of dims, with and without keepdim", "[reduce]") {
    const Shape s{3, 4, 5, 6};
    // Three layouts of the same logical [3, 4, 5, 6] input: contiguous; a permutation of a
    // [6, 5, 4, 3] leaf; every other plane of a [3, 4, 10, 6] leaf (offset 1).
    enum Layout { contiguous, permuted, sliced };
    for (Layout layout : {contiguous, permuted, sliced}) {
        const Shape base_shape = layout == contiguous ? s : layout == permuted ? Shape{6, 5, 4, 3} : Shape{3, 4, 10, 6};
        const std::vector<float> vbase = uniform_floats(numel_of(base_shape), 300 + layout);
        for (int mask = 0; mask < 16; ++mask) {  // mask 0: dims = {} (all dims)
            std::vector<int64_t> dims;
            std::vector<bool> red(4, mask == 0);
            for (int d = 0; d < 4; ++d)
                if (mask & (1 << d)) dims.push_back(d == 3 && mask % 3 == 0 ? -1 : d), red[size_t(d)] = true;
            for (bool keepdim : {false, true}) {
                for (bool is_mean : {false, true}) {
                    INFO((is_mean ? "mean" : "sum") << " over dims " << shape_str(dims) << " keepdim " << keepdim
                                                    << " layout " << layout);
                    Tensor base = make_f32(vbase, base_shape, dev, true);
                    Tensor x = layout == contiguous ? base
                               : layout == permuted ? base.permute({3, 2, 1, 0})
                                                    : base.slice(2, 1, 10, 2);
                    REQUIRE(x.shape() == s);
                    REQUIRE(x.is_contiguous() == (layout == contiguous));
                    Tensor y = is_mean ? mean(x, dims, keepdim) : sum(x, dims, keepdim);
                    const Shape so = reduced_shape(s, red, keepdim);
                    REQUIRE(y.shape() == so);

                    const std::vector<double> lx = view_values(widen(vbase), x);
                    const int64_t n_out = numel_of(so), n_red = numel_of(s) / n_out;
                    std::vector<double> ry(size_t(n_out), 0.0), S(size_t(n_out), 0.0);
                    for (int64_t i = 0; i < numel_of(s); ++i) {
                        ry[size_t(reduced_index(unravel(i, s), s, red))] += lx[size_t(i)];
                        S[size_t(reduced_index(unravel(i, s), s, red))] += std::fabs(lx[size_t(i)]);
                    }
                    if (is_mean) {
                        for (double& v : ry) v /= double(n_red);
                        for (double& v : S) v /= double(n_red);
                    }
                    HPT_CHECK_CLOSE(y, ref_tensor(ry, so), sum_tol(n_red, max_abs(S), is_mean ? 1.5 : 1));

                    const std::vector<float> vg = uniform_floats(n_out, 400 + mask);
                    y.backward(make_f32(vg, so, dev));
                    std::vector<double> gx(size_t(numel_of(s)));
                    for (int64_t i = 0; i < numel_of(s); ++i)
                        gx[size_t(i)] = vg[size_t(reduced_index(unravel(i, s), s, red))] / (is_mean ? n_red : 1);
                    HPT_CHECK_CLOSE(base.grad(), ref_tensor(unview_grad(gx, x, numel_of(base_shape)), base_shape),
                                    tol(DType::f32, 0, is_mean ? 1 : 0));
                }
            }
        }
    }
}

HPT_DEVICE_TEST("long reductions and wide kept rows", "[reduce]") {
    // One long contiguous reduction (split into chunks), a reduction over the outer dims of rows
    // wider than one tile of the kept-innermost path, and a middle dim.
    struct Case {
        Shape shape;
        std::vector<int64_t> dims;
    };
    const std::vector<Case> cases = {{{300007}, {}},        {{7, 600}, {0}},       {{3, 7, 601}, {0, 1}},
                                     {{40, 30, 300}, {1}},  {{2, 50, 3, 40}, {1, 3}}, {{1, 1, 5000}, {2}}};
    uint32_t seed = 500;
    for (const Case& c : cases) {
        INFO("sum over " << shape_str(c.dims) << " of " << shape_str(c.shape));
        const std::vector<float> v = uniform_floats(numel_of(c.shape), ++seed, 0.0, 1.0);
        Tensor x = make_f32(v, c.shape, dev);
        std::vector<bool> red(c.shape.size(), c.dims.empty());
        for (int64_t d : c.dims) red[size_t(d)] = true;
        const Shape so = reduced_shape(c.shape, red, false);
        std::vector<double> r(size_t(numel_of(so)), 0.0);
        for (int64_t i = 0; i < numel_of(c.shape); ++i) r[size_t(reduced_index(unravel(i, c.shape), c.shape, red))] += v[size_t(i)];
        // Values are positive: the sum of absolute values is the sum itself.
        const int64_t n = numel_of(c.shape) / numel_of(so);
        HPT_CHECK_CLOSE(sum(x, c.dims), ref_tensor(r, so), sum_tol(n, max_abs(r)));
        for (double& e : r) e /= double(n);
        HPT_CHECK_CLOSE(mean(x, c.dims), ref_tensor(r, so), sum_tol(n, max_abs(r), 1.5));
    }
}

HPT_DEVICE_TEST("i64 sums are exact", "[reduce]") {
    const Shape s{4, 3, 5};
    std::vector<int64_t> v(60);
    for (size_t i = 0; i < v.size(); ++i) v[i] = (int64_t(i * 2654435761u % 1000003) - 500000) * (int64_t(1) << 33) + int64_t(i);
    Tensor x = from_vector<int64_t>(v, s, dev);
    for (int mask = 0; mask < 8; ++mask) {
        std::vector<int64_t> dims;
        std::vector<bool> red(3, mask == 0);
        for (int d = 0; d < 3; ++d)
            if (mask & (1 << d)) dims.push_back(d), red[size_t(d)] = true;
        INFO("dims " << shape_str(dims));
        const Shape so = reduced_shape(s, red, false);
        std::vector<int64_t> r(size_t(numel_of(so)), 0);
        for (int64_t i = 0; i < 60; ++i) r[size_t(reduced_index(unravel(i, s), s, red))] += v[size_t(i)];
        Tensor y = sum(x, dims);
        CHECK(y.dtype() == DType::i64);
        CHECK(y.to_vector<int64_t>() == r);
    }
    // A transposed i64 input.
    Tensor xt = x.transpose(0, 2);
    std::vector<int64_t> r(5, 0);
    for (int64_t i = 0; i < 60; ++i) r[size_t(i % 5)] += v[size_t(i)];
    CHECK(sum(xt, {1, 2}).to_vector<int64_t>() == r);
}

namespace {

// Reference max along `dim` of a row-major tensor: the first maximum wins ties; NaN is the
// maximum (the first NaN's index).
void max_ref(const std::vector<double>& v, const Shape& s, int64_t dim, std::vector<double>& val,
             std::vector<int64_t>& idx) {
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < dim; ++d) outer *= s[size_t(d)];
    for (int64_t d = dim + 1; d < int64_t(s.size()); ++d) inner *= s[size_t(d)];
    const int64_t n = s[size_t(dim)];
    val.assign(size_t(outer * inner), 0.0);
    idx.assign(size_t(outer * inner), 0);
    for (int64_t o = 0; o < outer; ++o) {
        for (int64_t i = 0; i < inner; ++i) {
            int64_t best = 0;
            for (int64_t j = 0; j < n; ++j) {
                const double x = v[size_t((o * n + j) * inner + i)], b = v[size_t((o * n + best) * inner + i)];
                if (std::isnan(x)) {
                    if (!std::isnan(b)) best = j;
                    break;
                }
                if (x > b) best = j;
            }
            val[size_t(o * inner + i)] = v[size_t((o * n + best) * inner + i)];
            idx[size_t(o * inner + i)] = best;
        }
    }
}

}  // namespace

HPT_DEVICE_TEST("max and argmax: first index wins ties, NaN propagates, gradient to the argmax", "[reduce]") {
    const Shape s{4, 5, 6};
    std::vector<float> v(120);
    for (size_t i = 0; i < v.size(); ++i) v[i] = float(int(i * 7919 % 13) % 4);  // many ties
    for (bool with_nan : {false, true}) {
        std::vector<float> w = v;
        if (with_nan) w[0] = NAN, w[37] = NAN, w[38] = NAN, w[119] = NAN;
        for (int64_t dim : {0, 1, 2, -1}) {
            for (bool keepdim : {false, true}) {
                INFO("dim " << dim << " keepdim " << keepdim << (with_nan ? " with NaN" : ""));
                const int64_t d = dim < 0 ? dim + 3 : dim;
                std::vector<double> rv;
                std::vector<int64_t> ri;
                max_ref(widen(w), s, d, rv, ri);
                Shape so = s;
                if (keepdim) so[size_t(d)] = 1;
                else so.erase(so.begin() + d);
                Tensor x = make_f32(w, s, dev, true);
                auto mx = max(x, dim, keepdim);
                REQUIRE(mx.first.shape() == so);
                REQUIRE(mx.second.dtype() == DType::i64);
                HPT_CHECK_CLOSE(mx.first, ref_tensor(rv, so), tol(DType::f32, 0, 0));
                CHECK(mx.second.to_vector<int64_t>() == ri);
                Tensor am = argmax(x, dim, keepdim);
                CHECK(am.shape() == so);
                CHECK(am.to_vector<int64_t>() == ri);
                if (with_nan) continue;
                // The gradient goes to the first maximum only.
                const std::vector<float> vg = uniform_floats(numel_of(so), 600 + uint32_t(d));
                mx.first.backward(make_f32(vg, so, dev));
                std::vector<double> gx(120, 0.0);
                int64_t outer = 1, inner = 1;
                for (int64_t k = 0; k < d; ++k) outer *= s[size_t(k)];
                for (int64_t k = d + 1; k < 3; ++k) inner *= s[size_t(k)];
                for (int64_t o = 0; o < outer; ++o)
                    for (int64_t i = 0; i < inner; ++i)
                        gx[size_t((o * s[size_t(d)] + ri[size_t(o * inner + i)]) * inner + i)] = vg[size_t(o * inner + i)];
                HPT_CHECK_CLOSE(x.grad(), ref_tensor(gx, s), tol(DType::f32, 0, 0));
            }
        }
    }
    // A transposed input, and i64 values.
    Tensor xt = make_f32(v, {20, 6}, dev).t();
    std::vector<double> rv;
    std::vector<int64_t> ri;
    max_ref(view_values(widen(v), xt), {6, 20}, 1, rv, ri);
    CHECK(argmax(xt, 1).to_vector<int64_t>() == ri);
    Tensor xi = from_vector<int64_t>({3, -1, 7, 7, 2, -9}, {2, 3}, dev);
    CHECK(argmax(xi, 1).to_vector<int64_t>() == std::vector<int64_t>{2, 0});
    CHECK(max(xi, 0).first.to_vector<int64_t>() == std::vector<int64_t>{7, 2, 7});
    CHECK(max(xi, 0).second.to_vector<int64_t>() == std::vector<int64_t>{1, 1, 0});
}

HPT_DEVICE_TEST("reductions of 0-dim, size-1 and empty tensors", "[reduce]") {
    Tensor s = make_f32({2.5f}, {}, dev, true);
    CHECK(sum(s).shape() == Shape{});
    CHECK(sum(s).item<float>() == 2.5f);
    CHECK(mean(s).item<float>() == 2.5f);
    mean(s).backward();
    CHECK(s.grad().item<float>() == 1.0f);
    // Size-1 dims, reduced and kept.
    const std::vector<float> v = uniform_floats(12, 650);
    Tensor x = make_f32(v, {3, 1, 4, 1}, dev);
    HPT_CHECK_CLOSE(sum(x, {1}), ref_tensor(widen(v), {3, 4, 1}), tol(DType::f32, 0, 0));
    HPT_CHECK_CLOSE(mean(x, {1, 3}, true), ref_tensor(widen(v), {3, 1, 4, 1}), tol(DType::f32, 0, 0));
    std::vector<double> r(3, 0.0);
    for (int64_t i = 0; i < 12; ++i) r[size_t(i / 4)] += v[size_t(i)];
    HPT_CHECK_CLOSE(sum(x, {1, 2, 3}), ref_tensor(r, {3}), sum_tol(4, 4.0));
    // Empty: the sum of nothing is 0, the mean of nothing NaN; reducing a non-empty dim of an empty tensor gives an empty result.
    Tensor e = zeros({0, 3}, DType::f32, dev);
    CHECK(sum(e, {0}).to_vector<float>() == std::vector<float>{0, 0, 0});
    for (float m : mean(e, {0}).to_vector<float>()) CHECK(std::isnan(m));
    CHECK(sum(e, {1}).shape() == Shape{0});
    CHECK(sum(e).item<float>() == 0.0f);
}
