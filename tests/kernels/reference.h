// Helpers of the kernel value tests: seeded test data (independent of the engine's RNG) and the
// row-major index arithmetic that the f64 reference loops are written with.
//
// Every test computes an op on `dev` in f32 and compares it with a reference computed here, on the
// CPU, in double, from the very same values. References never call the op under test.
#pragma once
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "engine/autograd/grad_mode.h"
#include "engine/ops/ops.h"
#include "tests/support/compare.h"

namespace hpt::test {

// ---- data

// n uniform floats in [lo, hi) from a seeded Mersenne twister.
inline std::vector<float> uniform_floats(int64_t n, uint32_t seed, double lo = -1.0, double hi = 1.0) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(lo, hi);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = float(u(rng));
    return v;
}

// n floats with |x| in [lo, hi) and a random sign (for divisors, logs of |x|, ...).
inline std::vector<float> signed_floats(int64_t n, uint32_t seed, double lo, double hi) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(lo, hi);
    std::bernoulli_distribution s(0.5);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = float(s(rng) ? u(rng) : -u(rng));
    return v;
}

inline std::vector<double> widen(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }
inline std::vector<float> to_floats(const std::vector<double>& v) {
    std::vector<float> r(v.size());
    for (size_t i = 0; i < v.size(); ++i) r[i] = float(v[i]);
    return r;
}

// A f32 tensor on `d` holding v; with grad it is a leaf that requires grad.
inline Tensor make_f32(const std::vector<float>& v, const Shape& s, Device d, bool grad = false) {
    Tensor t = from_vector<float>(v, s, d);
    if (grad) t.requires_grad_();
    return t;
}

// A reference tensor (f64, CPU) holding v.
inline Tensor ref_tensor(const std::vector<double>& v, const Shape& s) { return from_vector<double>(v, s); }

// ---- index arithmetic

inline int64_t numel_of(const Shape& s) {
    int64_t n = 1;
    for (int64_t d : s) n *= d;
    return n;
}

// Row-major multi-index of flat position i in shape s.
inline std::vector<int64_t> unravel(int64_t i, const Shape& s) {
    std::vector<int64_t> idx(s.size());
    for (int64_t d = int64_t(s.size()) - 1; d >= 0; --d) {
        idx[size_t(d)] = i % s[size_t(d)];
        i /= s[size_t(d)];
    }
    return idx;
}

// Flat row-major position in shape `from` of the element that broadcasting `from` to the shape of
// `out_idx` reads (numpy rules: leading dims added, size-1 dims repeated).
inline int64_t broadcast_source(const std::vector<int64_t>& out_idx, const Shape& from) {
    const size_t lead = out_idx.size() - from.size();
    int64_t off = 0;
    for (size_t d = 0; d < from.size(); ++d) off = off * from[d] + (from[d] == 1 ? 0 : out_idx[lead + d]);
    return off;
}

// v (of shape `from`) broadcast to shape `to`, materialised row-major.
inline std::vector<double> broadcast_ref(const std::vector<double>& v, const Shape& from, const Shape& to) {
    std::vector<double> r(static_cast<size_t>(numel_of(to)));
    for (int64_t i = 0; i < numel_of(to); ++i) r[size_t(i)] = v[size_t(broadcast_source(unravel(i, to), from))];
    return r;
}

// The adjoint of broadcast_ref: g (of shape `to`) summed down to shape `from`.
inline std::vector<double> reduce_to_ref(const std::vector<double>& g, const Shape& to, const Shape& from) {
    std::vector<double> r(static_cast<size_t>(numel_of(from)), 0.0);
    for (int64_t i = 0; i < numel_of(to); ++i) r[size_t(broadcast_source(unravel(i, to), from))] += g[size_t(i)];
    return r;
}

// The logical (row-major) values of the strided view (shape, strides, offset) of a storage whose
// elements are `storage` — computed here, not by the engine's copy kernel.
inline std::vector<double> strided_values(const std::vector<double>& storage, const Shape& shape, const Shape& strides,
                                          int64_t offset) {
    std::vector<double> r(static_cast<size_t>(numel_of(shape)));
    for (int64_t i = 0; i < numel_of(shape); ++i) {
        const auto idx = unravel(i, shape);
        int64_t off = offset;
        for (size_t d = 0; d < shape.size(); ++d) off += idx[d] * strides[d];
        r[size_t(i)] = storage[size_t(off)];
    }
    return r;
}
inline std::vector<double> view_values(const std::vector<double>& storage, const Tensor& view) {
    return strided_values(storage, view.shape(), view.strides(), view.offset());
}

// The inverse: scatters the logical values g of a view back into a zero storage of n elements
// (the gradient a view's base receives).
inline std::vector<double> unview_grad(const std::vector<double>& g, const Tensor& view, int64_t n) {
    std::vector<double> r(static_cast<size_t>(n), 0.0);
    for (int64_t i = 0; i < view.numel(); ++i) {
        const auto idx = unravel(i, view.shape());
        int64_t off = view.offset();
        for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * view.strides()[d];
        r[size_t(off)] += g[size_t(i)];
    }
    return r;
}

inline double max_abs(const std::vector<double>& v) {
    double m = 0.0;
    for (double x : v) m = std::max(m, std::fabs(x));
    return m;
}

// ---- tolerances

// For a value computed in f32 as a sum of n terms whose absolute values add up to at most S
// (a dot product, a reduction): any summation order keeps |error| <= n * eps/2 * S (Higham's
// gamma_n), plus the final rounding of the result. tol() in multiples of f32's eps.
inline Tolerance sum_tol(int64_t n, double S, double k_rel = 1.0) {
    return tol(DType::f32, 0.5 * double(std::max<int64_t>(n, 1)) * S, k_rel);
}

}  // namespace hpt::test
