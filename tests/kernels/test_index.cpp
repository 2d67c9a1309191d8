// Joining and indexing: cat, split, index_select and gather — forward values and gradients
// (repeated indices accumulate) against loops written here.
#include <cstdint>
#include <catch2/catch.hpp>

#include "engine/ops/ops.h"
#include "tests/kernels/reference.h"
#include "tests/support/devices.h"

using namespace hpt;
using namespace hpt::test;

HPT_DEVICE_TEST("cat along every dim, with a non-contiguous input; gradients are the slices", "[index]") {
    for (int64_t dim : {0, 1, 2, -1}) {
        INFO("cat along dim " << dim);
        const int64_t d = dim < 0 ? dim + 3 : dim;
        // Three inputs of [2, 3, 4] with sizes 2, 1, 3 along d; the second is a transposed view.
        const std::vector<int64_t> sizes = {2, 1, 3};
        std::vector<Tensor> leaves, xs;
        std::vector<std::vector<double>> vals;
        uint32_t seed = 7000 + uint32_t(d) * 10;
        for (size_t k = 0; k < 3; ++k) {
            Shape s{2, 3, 4};
            s[size_t(d)] = sizes[k];
            const std::vector<float> v = uniform_floats(numel_of(s), ++seed);
            if (k == 1) {  // build it as the transpose of a leaf holding its transpose
                Shape st{s[2], s[1], s[0]};
                std::vector<float> vt(v.size());
                for (int64_t i = 0; i < numel_of(s); ++i) {
                    const auto idx = unravel(i, s);
                    vt[size_t((idx[2] * s[1] + idx[1]) * s[0] + idx[0])] = v[size_t(i)];
                }
                leaves.push_back(make_f32(vt, st, dev, true));
                xs.push_back(leaves.back().permute({2, 1, 0}));
                REQUIRE_FALSE(xs.back().is_contiguous());
            } else {
                leaves.push_back(make_f32(v, s, dev, true));
                xs.push_back(leaves.back());
            }
            vals.push_back(widen(v));
        }
        Tensor y = cat(xs, dim);
        Shape so{2, 3, 4};
        so[size_t(d)] = 6;
        REQUIRE(y.shape() == so);
        std::vector<double> ry(size_t(numel_of(so)));
        for (int64_t i = 0; i < numel_of(so); ++i) {
            auto idx = unravel(i, so);
            size_t k = 0;
            while (idx[size_t(d)] >= sizes[k]) idx[size_t(d)] -= sizes[k++];
            Shape s{2, 3, 4};
            s[size_t(d)] = sizes[k];
            int64_t off = 0;
            for (size_t e = 0; e < 3; ++e) off = off * s[e] + idx[e];
            ry[size_t(i)] = vals[k][size_t(off)];
        }
        HPT_CHECK_CLOSE(y, ref_tensor(ry, so), tol(DType::f32, 0, 0));
        const std::vector<float> vg = uniform_floats(numel_of(so), 7100);
        y.backward(make_f32(vg, so, dev));
        int64_t at = 0;
        for (size_t k = 0; k < 3; ++k) {
            const std::vector<double> gk = view_values(widen(vg), make_f32(vg, so, Device::cpu()).slice(d, at, at + sizes[k]));
            at += sizes[k];
            HPT_CHECK_CLOSE(leaves[k].grad(), ref_tensor(unview_grad(gk, xs[k], leaves[k].numel()), leaves[k].shape()),
                            tol(DType::f32, 0, 0));
        }
    }
}

HPT_DEVICE_TEST("cat with an empty input and of one input", "[index]") {
    const std::vector<float> va = uniform_floats(6, 7050), vb = uniform_floats(3, 7051);
    Tensor a = make_f32(va, {2, 3}, dev), b = make_f32(vb, {1, 3}, dev), e = zeros({0, 3}, DType::f32, dev);
    std::vector<double> r = widen(va);
    r.insert(r.end(), vb.begin(), vb.end());
    HPT_CHECK_CLOSE(cat({a, e, b}, 0), ref_tensor(r, {3, 3}), tol(DType::f32, 0, 0));
    HPT_CHECK_CLOSE(cat({a}, 1), ref_tensor(widen(va), {2, 3}), tol(DType::f32, 0, 0));
    CHECK_THROWS_WITH(cat({a, make_f32(vb, {3, 1}, dev)}, 0), Catch::Contains("does not match"));
}

HPT_DEVICE_TEST("split into equal and uneven parts: views, values and gradients", "[index]") {
    const std::vector<float> v = uniform_floats(5 * 7, 7200);
    Tensor x = make_f32(v, {5, 7}, dev, true);
    const auto parts = split(x, 3, 1);  // 3, 3, 1 columns
    REQUIRE(parts.size() == 3);
    CHECK(parts[2].shape() == Shape{5, 1});
    const auto rows = split(x, std::vector<int64_t>{1, 0, 4}, 0);
    REQUIRE(rows.size() == 3);
    CHECK(rows[1].shape() == Shape{0, 7});
    for (size_t k = 0; k < 3; ++k) {
        CHECK(parts[k].storage() == x.storage());
        HPT_CHECK_CLOSE(parts[k], ref_tensor(view_values(widen(v), parts[k]), parts[k].shape()), tol(DType::f32, 0, 0));
        HPT_CHECK_CLOSE(rows[k], ref_tensor(view_values(widen(v), rows[k]), rows[k].shape()), tol(DType::f32, 0, 0));
    }
    // Use two of the column parts (weights 2 and 3) and the last row part; the middle columns get 0.
    (sum(parts[0]) * 2.0 + sum(parts[2]) * 3.0 + sum(rows[2])).backward();
    std::vector<double> g(35, 0.0);
    for (int64_t r = 0; r < 5; ++r)
        for (int64_t c = 0; c < 7; ++c) g[size_t(r * 7 + c)] = (c < 3 ? 2.0 : c == 6 ? 3.0 : 0.0) + (r >= 1 ? 1.0 : 0.0);
    HPT_CHECK_CLOSE(x.grad(), ref_tensor(g, {5, 7}), tol(DType::f32, 0, 0));
}

HPT_DEVICE_TEST("index_select along every dim; repeated indices accumulate in the gradient", "[index]") {
    const Shape s{4, 5, 6};
    const std::vector<float> v = uniform_floats(120, 7300);
    for (int64_t dim : {0, 1, 2, -1}) {
        const int64_t d = dim < 0 ? dim + 3 : dim;
        const std::vector<int64_t> index = d == 0 ? std::vector<int64_t>{3, 0, 3, 3, 1}
                                         : d == 1 ? std::vector<int64_t>{4, 4, 0}
                                                  : std::vector<int64_t>{5, 1, 2, 1, 0, 5, 5, 3};
        INFO("dim " << dim << " index " << shape_str(index));
        for (bool transposed : {false, true}) {
            // The transposed case selects from the transpose of a [6, 5, 4] leaf (a non-contiguous input).
            std::vector<float> vl = v;
            Shape ls = s;
            if (transposed) {
                ls = {6, 5, 4};
                for (int64_t i = 0; i < 120; ++i) {
                    const auto idx = unravel(i, s);
                    vl[size_t((idx[2] * 5 + idx[1]) * 4 + idx[0])] = v[size_t(i)];
                }
            }
            Tensor leaf = make_f32(vl, ls, dev, true);
            Tensor x = transposed ? leaf.permute({2, 1, 0}) : leaf;
            Tensor y = index_select(x, dim, from_vector<int64_t>(index, {int64_t(index.size())}, dev));
            Shape so = s;
            so[size_t(d)] = int64_t(index.size());
            REQUIRE(y.shape() == so);
            const std::vector<float> vg = uniform_floats(numel_of(so), 7400 + uint32_t(d));
            y.backward(make_f32(vg, so, dev));
            std::vector<double> ry(size_t(numel_of(so))), gx(120, 0.0), S(120, 0.0);
            int64_t reps = 1;
            std::vector<int64_t> count(120, 0);
            for (int64_t i = 0; i < numel_of(so); ++i) {
                auto idx = unravel(i, so);
                idx[size_t(d)] = index[size_t(idx[size_t(d)])];
                const size_t src = size_t((idx[0] * s[1] + idx[1]) * s[2] + idx[2]);
                ry[size_t(i)] = v[src];
                gx[src] += vg[size_t(i)];
                S[src] += std::fabs(vg[size_t(i)]);
                reps = std::max(reps, ++count[src]);
            }
            HPT_CHECK_CLOSE(y, ref_tensor(ry, so), tol(DType::f32, 0, 0));
            HPT_CHECK_CLOSE(leaf.grad(), ref_tensor(unview_grad(gx, x, 120), ls), sum_tol(reps, max_abs(S)));
        }
    }
}

HPT_DEVICE_TEST("gather along every dim; repeated indices accumulate in the gradient", "[index]") {
    const Shape s{4, 5, 6};
    const std::vector<float> v = uniform_floats(120, 7500);
    for (int64_t dim : {0, 1, 2}) {
        // The index is smaller than x in the other dims (allowed) and has repeats along dim.
        Shape is{3, 4, 5};
        is[size_t(dim)] = 7;
        std::vector<int64_t> index(size_t(numel_of(is)));
        for (size_t i = 0; i < index.size(); ++i) index[i] = int64_t((i * 7 + i / 3) % size_t(s[size_t(dim)]));
        INFO("dim " << dim << " index shape " << shape_str(is));
        Tensor x = make_f32(v, s, dev, true);
        Tensor y = gather(x, dim, from_vector<int64_t>(index, is, dev));
        REQUIRE(y.shape() == is);
        const std::vector<float> vg = uniform_floats(numel_of(is), 7600 + uint32_t(dim));
        y.backward(make_f32(vg, is, dev));
        std::vector<double> ry(index.size()), gx(120, 0.0), S(120, 0.0);
        int64_t reps = 1;
        std::vector<int64_t> count(120, 0);
        for (int64_t i = 0; i < numel_of(is); ++i) {
            auto idx = unravel(i, is);
            idx[size_t(dim)] = index[size_t(i)];
            const size_t src = size_t((idx[0] * s[1] + idx[1]) * s[2] + idx[2]);
            ry[size_t(i)] = v[src];
            gx[src] += vg[size_t(i)];
            S[src] += std::fabs(vg[size_t(i)]);
            reps = std::max(reps, ++count[src]);
        }
        CHECK(reps > 1);
        HPT_CHECK_CLOSE(y, ref_tensor(ry, is), tol(DType::f32, 0, 0));
        HPT_CHECK_CLOSE(x.grad(), ref_tensor(gx, s), sum_tol(reps, max_abs(S)));
    }
    // i64 values gather too; bad indices are reported (on a GPU at the next synchronisation,
    // which reading the result to the host is).
    Tensor xi = from_vector<int64_t>({10, 20, 30, 40}, {2, 2}, dev);
    CHECK(gather(xi, 1, from_vector<int64_t>({1, 1, 0, 1}, {2, 2}, dev)).to_vector<int64_t>() ==
          std::vector<int64_t>{20, 20, 30, 40});
    CHECK_THROWS_WITH(gather(xi, 1, from_vector<int64_t>({0, 2}, {2, 1}, dev)).cpu(), Catch::Contains("out of range"));
    CHECK_THROWS_WITH(index_select(xi, 0, from_vector<int64_t>({-1}, {1}, dev)).cpu(), Catch::Contains("out of range"));
}
