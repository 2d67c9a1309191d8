// Pooling: max_pool2d (padding, overlapping windows, ties), avg_pool2d (count_include_pad true and
// false) and adaptive_avg_pool2d (non-dividing and larger outputs, 1x1 = global average) — values
// and input gradients against f64 loops.
#include <cstdint>
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <sstream>

#include "engine/ops/ops.h"
#include "tests/kernels/reference.h"
#include "tests/support/devices.h"

using namespace hpt;
using namespace hpt::test;

namespace {

Pool2dAttrs pool(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, bool include_pad = true) {
    Pool2dAttrs p;
    p.kernel[0] = kh, p.kernel[1] = kw, p.stride[0] = sh, p.stride[1] = sw, p.padding[0] = ph, p.padding[1] = pw;
    p.count_include_pad = include_pad;
    return p;
}

std::string pool_str(const Pool2dAttrs& p) {
    std::ostringstream os;
    os << "kernel " << p.kernel[0] << "x" << p.kernel[1] << " stride " << p.stride[0] << "x" << p.stride[1] << " pad "
       << p.padding[0] << "x" << p.padding[1];
    return os.str();
}

int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t p) { return (in + 2 * p - k) / s + 1; }

const std::vector<Pool2dAttrs>& pool_cases() {
    static const std::vector<Pool2dAttrs> cases = {
        pool(2, 2, 2, 2, 0, 0), pool(3, 3, 2, 2, 1, 1), pool(3, 3, 1, 1, 1, 1),  // overlapping windows
        pool(3, 2, 2, 1, 1, 0), pool(4, 4, 3, 3, 2, 2), pool(1, 1, 2, 2, 0, 0), pool(7, 9, 1, 1, 0, 0)};
    return cases;
}

}  // namespace

HPT_DEVICE_TEST("max_pool2d: values and gradients with padding and overlapping windows", "[pool]") {
    const int64_t N = 2, C = 3, H = 7, W = 9;
    const Shape s{N, C, H, W};
    uint32_t seed = 5000;
    for (bool ties : {false, true}) {
        for (const Pool2dAttrs& p : pool_cases()) {
            INFO(pool_str(p) << (ties ? " with ties" : ""));
            std::vector<float> v = uniform_floats(N * C * H * W, seed += 2, -2, 2);
            if (ties)
                for (float& e : v) e = std::floor(e);  // values in {-2, -1, 0, 1}: many ties
            const int64_t OH = pool_out(H, p.kernel[0], p.stride[0], p.padding[0]),
                          OW = pool_out(W, p.kernel[1], p.stride[1], p.padding[1]);
            const std::vector<float> vg = uniform_floats(N * C * OH * OW, seed + 1);
            Tensor x = make_f32(v, s, dev, true);
            Tensor y = max_pool2d(x, p);
            REQUIRE(y.shape() == Shape{N, C, OH, OW});
            y.backward(make_f32(vg, y.shape(), dev));
            // Padding never wins (it is -inf); among equal maxima the first in row-major window
            // order wins and alone receives the gradient.
            std::vector<double> ry(vg.size()), gx(v.size(), 0.0);
            int64_t n_acc = 1;  // the most gradient contributions one input element receives
            std::vector<int64_t> count(v.size(), 0);
            for (int64_t pl = 0; pl < N * C; ++pl)
                for (int64_t i = 0; i < OH; ++i)
                    for (int64_t j = 0; j < OW; ++j) {
                        int64_t best = -1;
                        for (int64_t u = 0; u < p.kernel[0]; ++u)
                            for (int64_t w = 0; w < p.kernel[1]; ++w) {
                                const int64_t h = i * p.stride[0] - p.padding[0] + u, q = j * p.stride[1] - p.padding[1] + w;
                                if (h < 0 || h >= H || q < 0 || q >= W) continue;
                                const int64_t k = (pl * H + h) * W + q;
                                if (best < 0 || v[size_t(k)] > v[size_t(best)]) best = k;
                            }
                        const int64_t o = (pl * OH + i) * OW + j;
                        ry[size_t(o)] = v[size_t(best)];
                        gx[size_t(best)] += vg[size_t(o)];
                        n_acc = std::max(n_acc, ++count[size_t(best)]);
                    }
            HPT_CHECK_CLOSE(y, ref_tensor(ry, y.shape()), tol(DType::f32, 0, 0));
            HPT_CHECK_CLOSE(x.grad(), ref_tensor(gx, s), sum_tol(n_acc, double(n_acc)));
        }
    }
    // NaN wins its window, the first NaN in window order taking the gradient; a window of -inf
    // gives -inf and its first element the gradient.
    const float inf = std::numeric_limits<float>::infinity();
    std::vector<float> v(16, 0.0f);
    v[5] = NAN;
    v[4] = NAN;  // window 0 is elements 0, 1, 4, 5: element 4 is its first NaN
    v[2] = 1.0f, v[6] = NAN;  // window 1 (2, 3, 6, 7): a NaN after a larger value
    v[8] = v[9] = v[12] = v[13] = -inf;  // window 2
    Tensor x = make_f32(v, {1, 1, 4, 4}, dev, true);
    Tensor y = max_pool2d(x, pool(2, 2, 2, 2, 0, 0));
    y.backward(make_f32({1.f, 2.f, 3.f, 4.f}, y.shape(), dev));
    const std::vector<float> got = y.to_vector<float>(), g = x.grad().to_vector<float>();
    CHECK(std::isnan(got[0]));
    CHECK(std::isnan(got[1]));
    CHECK(got[2] == -inf);
    CHECK(got[3] == 0.0f);
    CHECK(g == std::vector<float>{0, 0, 0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 0, 0, 0, 0});
}

HPT_DEVICE_TEST("avg_pool2d: count_include_pad true and false, values and gradients", "[pool]") {
    const int64_t N = 2, C = 3, H = 7, W = 9;
    const Shape s{N, C, H, W};
    uint32_t seed = 5100;
    for (bool include_pad : {true, false}) {
        for (Pool2dAttrs p : pool_cases()) {
            p.count_include_pad = include_pad;
            INFO(pool_str(p) << " count_include_pad " << include_pad);
            const std::vector<float> v = uniform_floats(N * C * H * W, seed += 2, -2, 2);
            const int64_t OH = pool_out(H, p.kernel[0], p.stride[0], p.padding[0]),
                          OW = pool_out(W, p.kernel[1], p.stride[1], p.padding[1]);
            const std::vector<float> vg = uniform_floats(N * C * OH * OW, seed + 1);
            Tensor x = make_f32(v, s, dev, true);
            Tensor y = avg_pool2d(x, p);
            REQUIRE(y.shape() == Shape{N, C, OH, OW});
            y.backward(make_f32(vg, y.shape(), dev));
            std::vector<double> ry(vg.size()), gx(v.size(), 0.0), Sg(v.size(), 0.0);
            double Sy = 0;
            int64_t n_acc = 0;
            std::vector<int64_t> count(v.size(), 0);
            for (int64_t pl = 0; pl < N * C; ++pl)
                for (int64_t i = 0; i < OH; ++i)
                    for (int64_t j = 0; j < OW; ++j) {
                        // Padded cells count towards the divisor only with count_include_pad (and
                        // only up to the padded border, as in PyTorch).
                        const int64_t h0 = i * p.stride[0] - p.padding[0], q0 = j * p.stride[1] - p.padding[1];
                        const int64_t h1 = std::min(h0 + p.kernel[0], H + p.padding[0]),
                                      q1 = std::min(q0 + p.kernel[1], W + p.padding[1]);
                        double acc = 0, abs_acc = 0;
                        int64_t inside = 0;
                        for (int64_t h = std::max<int64_t>(h0, 0); h < std::min(h1, H); ++h)
                            for (int64_t q = std::max<int64_t>(q0, 0); q < std::min(q1, W); ++q) {
                                acc += v[size_t((pl * H + h) * W + q)];
                                abs_acc += std::fabs(v[size_t((pl * H + h) * W + q)]);
                                ++inside;
                            }
                        const double div = include_pad ? double((h1 - h0) * (q1 - q0)) : double(inside);
                        const int64_t o = (pl * OH + i) * OW + j;
                        ry[size_t(o)] = acc / div;
                        Sy = std::max(Sy, abs_acc / div);
                        for (int64_t h = std::max<int64_t>(h0, 0); h < std::min(h1, H); ++h)
                            for (int64_t q = std::max<int64_t>(q0, 0); q < std::min(q1, W); ++q) {
                                const size_t k = size_t((pl * H + h) * W + q);
                                gx[k] += vg[size_t(o)] / div;
                                Sg[k] += std::fabs(vg[size_t(o)] / div);
                                n_acc = std::max(n_acc, ++count[k]);
                            }
                    }
            const int64_t window = p.kernel[0] * p.kernel[1];
            HPT_CHECK_CLOSE(y, ref_tensor(ry, y.shape()), sum_tol(window + 1, Sy));
            HPT_CHECK_CLOSE(x.grad(), ref_tensor(gx, s), sum_tol(n_acc + 1, max_abs(Sg)));
        }
    }
}

HPT_DEVICE_TEST("adaptive_avg_pool2d: non-dividing, overlapping, larger and global outputs", "[pool]") {
    struct Case {
        int64_t H, W, OH, OW;
    };
    const std::vector<Case> cases = {{7, 9, 3, 4}, {7, 9, 1, 1}, {4, 4, 3, 3}, {5, 5, 5, 5},
                                     {5, 3, 7, 4}, {8, 8, 2, 2}, {13, 6, 5, 1}};
    const int64_t N = 2, C = 3;
    uint32_t seed = 5200;
    for (const Case& c : cases) {
        INFO(c.H << "x" << c.W << " -> " << c.OH << "x" << c.OW);
        const Shape s{N, C, c.H, c.W};
        const std::vector<float> v = uniform_floats(N * C * c.H * c.W, seed += 2, -2, 2);
        const std::vector<float> vg = uniform_floats(N * C * c.OH * c.OW, seed + 1);
        Tensor x = make_f32(v, s, dev, true);
        Tensor y = adaptive_avg_pool2d(x, c.OH, c.OW);
        REQUIRE(y.shape() == Shape{N, C, c.OH, c.OW});
        y.backward(make_f32(vg, y.shape(), dev));
        // Bin i covers [floor(i*H/OH), ceil((i+1)*H/OH)).
        std::vector<double> ry(vg.size()), gx(v.size(), 0.0), Sg(v.size(), 0.0);
        double Sy = 0;
        int64_t window = 0, n_acc = 0;
        std::vector<int64_t> count(v.size(), 0);
        for (int64_t pl = 0; pl < N * C; ++pl)
            for (int64_t i = 0; i < c.OH; ++i)
                for (int64_t j = 0; j < c.OW; ++j) {
                    const int64_t h0 = int64_t(std::floor(double(i * c.H) / double(c.OH))),
                                  h1 = int64_t(std::ceil(double((i + 1) * c.H) / double(c.OH)));
                    const int64_t q0 = int64_t(std::floor(double(j * c.W) / double(c.OW))),
                                  q1 = int64_t(std::ceil(double((j + 1) * c.W) / double(c.OW)));
                    const double div = double((h1 - h0) * (q1 - q0));
                    window = std::max(window, (h1 - h0) * (q1 - q0));
                    double acc = 0, abs_acc = 0;
                    for (int64_t h = h0; h < h1; ++h)
                        for (int64_t q = q0; q < q1; ++q)
                            acc += v[size_t((pl * c.H + h) * c.W + q)], abs_acc += std::fabs(v[size_t((pl * c.H + h) * c.W + q)]);
                    const int64_t o = (pl * c.OH + i) * c.OW + j;
                    ry[size_t(o)] = acc / div;
                    Sy = std::max(Sy, abs_acc / div);
                    for (int64_t h = h0; h < h1; ++h)
                        for (int64_t q = q0; q < q1; ++q) {
                            const size_t k = size_t((pl * c.H + h) * c.W + q);
                            gx[k] += vg[size_t(o)] / div;
                            Sg[k] += std::fabs(vg[size_t(o)] / div);
                            n_acc = std::max(n_acc, ++count[k]);
                        }
                }
        HPT_CHECK_CLOSE(y, ref_tensor(ry, y.shape()), sum_tol(window + 1, Sy));
        HPT_CHECK_CLOSE(x.grad(), ref_tensor(gx, s), sum_tol(n_acc + 1, max_abs(Sg)));
        if (c.OH == 1 && c.OW == 1) {
            // 1x1 is the global average: the mean over H and W.
            HPT_CHECK_CLOSE(y.reshape({N, C}), mean(x, {2, 3}), sum_tol(2 * c.H * c.W, Sy));
        }
    }
}
