// The kernels exposed for optimizers and initialisation: the fused SGD step against its formula
// over several steps, and fill_random (positional determinism and the moments of its distributions).
#include <cstdint>
#include <catch2/catch.hpp>

#include <cmath>

#include "engine/core/philox.h"
#include "engine/ops/ops.h"
#include "tests/kernels/reference.h"
#include "tests/support/devices.h"

using namespace hpt;
using namespace hpt::test;

HPT_DEVICE_TEST("sgd_step follows b = m*b + g + wd*p; p -= lr*b over several steps", "[sgd]") {
    struct Case {
        int64_t n;
        SgdAttrs a;
    };
    const std::vector<Case> cases = {{1000, {0.1, 0.9, 1e-2}}, {100003, {0.03, 0.9, 1e-4}}, {257, {0.5, 0.0, 0.0}},
                                     {64, {1.0, 0.5, 0.3}}};
    uint32_t seed = 8000;
    for (const Case& c : cases) {
        INFO("n " << c.n << " lr " << c.a.lr << " momentum " << c.a.momentum << " weight decay " << c.a.weight_decay);
        const std::vector<float> p0 = uniform_floats(c.n, seed += 10, -2, 2);
        Tensor p = make_f32(p0, {c.n}, dev), b = zeros({c.n}, DType::f32, dev);
        std::vector<double> rp = widen(p0), rb(size_t(c.n), 0.0);
        // First-order error bounds of an f32 step (in eps), carried from step to step; the
        // hyperparameters themselves are rounded to f32 (0.1 is not an f32 number). The stored
        // results are allowed a whole eps (not eps/2) so that results just above a power of two
        // do not sit at the bound.
        std::vector<double> ep(size_t(c.n), 0.0), eb(size_t(c.n), 0.0);
        const double lr = c.a.lr, m = c.a.momentum, wd = c.a.weight_decay;
        for (int step = 0; step < 6; ++step) {
            INFO("step " << step);
            const std::vector<float> g = uniform_floats(c.n, seed + uint32_t(step) + 1);
            sgd_step(p, make_f32(g, {c.n}, dev), b, c.a);
            double bound_p = 0, bound_b = 0;
            for (size_t i = 0; i < size_t(c.n); ++i) {
                const double d = g[i] + wd * rp[i], nb = m * rb[i] + d, np = rp[i] - lr * nb;
                eb[i] = m * eb[i] + wd * ep[i] +
                        0.5 * (2 * std::fabs(wd * rp[i]) + std::fabs(d) + 2 * std::fabs(m * rb[i])) + std::fabs(nb);
                ep[i] = ep[i] + lr * eb[i] + std::fabs(lr * nb) + std::fabs(np);
                rb[i] = nb, rp[i] = np;
                bound_p = std::max(bound_p, ep[i]), bound_b = std::max(bound_b, eb[i]);
            }
            HPT_CHECK_CLOSE(p, ref_tensor(rp, {c.n}), tol(DType::f32, bound_p, 0));
            HPT_CHECK_CLOSE(b, ref_tensor(rb, {c.n}), tol(DType::f32, bound_b, 0));
        }
    }
    // The buffers must be one contiguous shape.
    Tensor p = zeros({4, 6}, DType::f32, dev);
    CHECK_THROWS_WITH(sgd_step(p.t(), zeros({6, 4}, DType::f32, dev), zeros({6, 4}, DType::f32, dev), {}),
                      Catch::Contains("contiguous"));
    CHECK_THROWS(sgd_step(p, zeros({24}, DType::f32, dev), zeros({4, 6}, DType::f32, dev), {}));
}

namespace {
RandomAttrs random_attrs(RandomAttrs::Dist dist, uint64_t seed, uint64_t stream, uint64_t offset, double a, double b) {
    RandomAttrs r;
    r.dist = dist, r.seed = seed, r.stream = stream, r.offset = offset, r.a = a, r.b = b;
    return r;
}

std::vector<float> filled(int64_t n, const RandomAttrs& a, Device dev, DType dt = DType::f32) {
    Tensor t = empty({n}, dt, dev);
    fill_random(t, a);
    return t.to(DType::f32).to_vector<float>();
}
}  // namespace

HPT_DEVICE_TEST("fill_random: (seed, stream, offset) determine the values, element by element", "[random]") {
    for (auto dist : {RandomAttrs::normal, RandomAttrs::uniform}) {
        INFO((dist == RandomAttrs::normal ? "normal" : "uniform"));
        const RandomAttrs a = random_attrs(dist, 1234, 7, 0, 0.5, 2.0);
        const std::vector<float> x = filled(70000, a, dev);
        CHECK(filled(70000, a, dev) == x);                 // the same call, the same values
        CHECK(filled(70000, a, Device::cpu()) == x);       // on every device
        // Element i depends on offset + i only: a fill at offset 1000 is the tail of this one.
        RandomAttrs shifted = a;
        shifted.offset = 1000;
        const std::vector<float> tail = filled(69000, shifted, dev);
        CHECK(std::equal(tail.begin(), tail.end(), x.begin() + 1000));
        // Another seed or stream gives other values.
        RandomAttrs other = a;
        other.stream = 8;
        CHECK(filled(100, other, dev) != std::vector<float>(x.begin(), x.begin() + 100));
        other = a;
        other.seed = 1235;
        CHECK(filled(100, other, dev) != std::vector<float>(x.begin(), x.begin() + 100));
        // The documented draw: Box-Muller on the first two words of Philox at (seed, stream, offset + i),
        // or the first word scaled to (a, b); f32 is the f64 value rounded.
        const std::vector<float> x64 = filled(64, a, dev, DType::f64);
        for (int64_t i = 0; i < 64; ++i) {
            const Philox4 r = philox_at(a.seed, a.stream, a.offset + uint64_t(i));
            const double want = dist == RandomAttrs::normal ? a.a + a.b * philox_normal(r.v[0], r.v[1])
                                                            : a.a + (a.b - a.a) * philox_unit(r.v[0]);
            CHECK(x[size_t(i)] == float(want));
            CHECK(x64[size_t(i)] == float(want));
        }
    }
}

HPT_DEVICE_TEST("fill_random: normal and uniform moments", "[random]") {
    const int64_t n = 1 << 18;
    const double sn = std::sqrt(double(n));
    {
        const std::vector<float> x = filled(n, random_attrs(RandomAttrs::normal, 42, 3, 0, 2.0, 3.0), dev);
        double m1 = 0;
        for (float v : x) m1 += v;
        m1 /= double(n);
        double m2 = 0, m3 = 0, m4 = 0;
        for (float v : x) {
            const double z = (v - 2.0) / 3.0;
            m2 += z * z, m3 += z * z * z, m4 += z * z * z * z;
        }
        m2 /= double(n), m3 /= double(n), m4 /= double(n);
        INFO("normal(2, 3): mean " << m1 << ", standardised variance " << m2 << ", skewness " << m3 << ", kurtosis " << m4);
        // Five standard errors: sd(mean) = 3/sqrt(n), sd(var) = sqrt(2/n), sd(skew) = sqrt(15/n), sd(kurt) = sqrt(96/n).
        CHECK(std::fabs(m1 - 2.0) < 5 * 3.0 / sn);
        CHECK(std::fabs(m2 - 1.0) < 5 * std::sqrt(2.0) / sn);
        CHECK(std::fabs(m3) < 5 * std::sqrt(15.0) / sn);
        CHECK(std::fabs(m4 - 3.0) < 5 * std::sqrt(96.0) / sn);
        // Tails: P(|z| > 2) = 4.55%, P(|z| > 3) = 0.27%.
        int64_t t2 = 0, t3 = 0;
        for (float v : x) t2 += std::fabs((v - 2.0) / 3.0) > 2, t3 += std::fabs((v - 2.0) / 3.0) > 3;
        CHECK(std::fabs(double(t2) / double(n) - 0.0455) < 5 * std::sqrt(0.0455 * 0.9545 / double(n)));
        CHECK(std::fabs(double(t3) / double(n) - 0.0027) < 5 * std::sqrt(0.0027 * 0.9973 / double(n)));
    }
    {
        const double lo = -1.0, hi = 3.0;
        const std::vector<float> x = filled(n, random_attrs(RandomAttrs::uniform, 42, 4, 0, lo, hi), dev);
        double m1 = 0, m2 = 0;
        std::vector<int64_t> bins(16, 0);
        float mn = x[0], mx = x[0];
        for (float v : x) {
            m1 += v, m2 += (v - 1.0) * (v - 1.0);
            mn = std::min(mn, v), mx = std::max(mx, v);
            bins[size_t(std::min<int64_t>(15, int64_t((v - lo) / (hi - lo) * 16)))]++;
        }
        m1 /= double(n), m2 /= double(n);
        INFO("uniform(-1, 3): mean " << m1 << ", variance " << m2 << ", min " << mn << ", max " << mx);
        CHECK(mn >= lo);
        CHECK(mx <= hi);
        CHECK(std::fabs(m1 - 1.0) < 5 * std::sqrt(16.0 / 12.0) / sn);
        CHECK(std::fabs(m2 - 16.0 / 12.0) < 5 * std::sqrt(16.0 * 16.0 / 180.0) / sn);  // var of (x - mu)^2 = (b-a)^4/180
        for (int64_t k : bins) CHECK(std::fabs(double(k) - double(n) / 16) < 5 * std::sqrt(double(n) / 16 * 15 / 16));
    }
}
