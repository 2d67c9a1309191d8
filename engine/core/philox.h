// Philox-4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a
// counter-based generator. A draw is a pure function of (key, counter), so any element, sample
// or view can be generated independently, in any order, on the CPU or the GPU, with equal bits.
#pragma once
#include <cmath>
#include <cstdint>

#include "engine/core/dtype.h"

namespace hpt {

struct Philox4 {
    uint32_t v[4];
};

HPT_HD inline uint32_t philox_mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
    const uint64_t p = uint64_t(a) * uint64_t(b);
    *hi = uint32_t(p >> 32);
    return uint32_t(p);
}

// key: 64 bits (k0, k1); counter: 128 bits (c0..c3).
HPT_HD inline Philox4 philox4x32(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
    for (int r = 0; r < 10; ++r) {
        uint32_t hi0, hi1;
        const uint32_t lo0 = philox_mulhilo(0xD2511F53u, c0, &hi0);
        const uint32_t lo1 = philox_mulhilo(0xCD9E8D57u, c2, &hi1);
        const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return {{c0, c1, c2, c3}};
}

// Draws keyed by (seed, stream) at a 64-bit position.
HPT_HD inline Philox4 philox_at(uint64_t seed, uint64_t stream, uint64_t position) {
    return philox4x32(uint32_t(position), uint32_t(position >> 32), uint32_t(stream), uint32_t(stream >> 32),
                      uint32_t(seed), uint32_t(seed >> 32));
}

// A uniform double in (0, 1) from one 32-bit word (never 0, so log() is safe).
HPT_HD inline double philox_unit(uint32_t x) { return (double(x) + 0.5) * (1.0 / 4294967296.0); }

// The transforms below give the same bits on the CPU and the GPU. They use only operations that
// IEEE 754 rounds correctly everywhere (+, -, *, /, sqrt and explicit fma), and every multiply
// that feeds an addition is an explicit fma, so a compiler's choice to fuse (GCC with FMA
// hardware, nvcc by default) cannot change a result. The library log and cos are avoided: glibc
// and CUDA's libdevice round them differently in the last bit. Accuracy: within 2 ulp.

// log(x) for a positive normal x: x = 2^e m with m in [sqrt(1/2), sqrt(2)), and
// log(m) = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...) with s = (m - 1) / (m + 1), |s| < 0.172.
HPT_HD inline double philox_log(double x) {
    uint64_t bits;
    memcpy(&bits, &x, 8);
    int e = int((bits >> 52) & 0x7ff) - 1023;
    bits = (bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull;
    double m;
    memcpy(&m, &bits, 8);
    if (m > 1.4142135623730951) {
        m *= 0.5;
        e += 1;
    }
    const double s = (m - 1.0) / (m + 1.0);
    const double z = s * s;
    double q = 1.0 / 23;
    q = ::fma(q, z, 1.0 / 21);
    q = ::fma(q, z, 1.0 / 19);
    q = ::fma(q, z, 1.0 / 17);
    q = ::fma(q, z, 1.0 / 15);
    q = ::fma(q, z, 1.0 / 13);
    q = ::fma(q, z, 1.0 / 11);
    q = ::fma(q, z, 1.0 / 9);
    q = ::fma(q, z, 1.0 / 7);
    q = ::fma(q, z, 1.0 / 5);
    q = ::fma(q, z, 1.0 / 3);
    q = ::fma(q, z, 1.0);
    const double log_m = (2.0 * s) * q;
    // e * ln2 in two parts; the product with the high part is exact (ln2_hi has 32 bits).
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    return ::fma(double(e), ln2_hi, ::fma(double(e), ln2_lo, log_m));
}

// cos(2 pi u) for u in [0, 1]: the quarter turn q nearest to 4u picks cos or sin of the rest
// a = (4u - q) pi/2, |a| <= pi/4, each a Taylor polynomial to below 1e-17.
HPT_HD inline double philox_cos_2pi(double u) {
    const double t = 4.0 * u;
    const double q = ::floor(t + 0.5);
    const double a = (t - q) * 1.5707963267948966;
    const double z = a * a;
    // Coefficients (-1)^k / (2k)! and (-1)^k / (2k+1)!, evaluated by Horner's rule in z = a^2.
    double c = 1.0 / 20922789888000.0;  // 1/16!
    c = ::fma(c, z, -1.0 / 87178291200.0);
    c = ::fma(c, z, 1.0 / 479001600.0);
    c = ::fma(c, z, -1.0 / 3628800.0);
    c = ::fma(c, z, 1.0 / 40320.0);
    c = ::fma(c, z, -1.0 / 720.0);
    c = ::fma(c, z, 1.0 / 24.0);
    c = ::fma(c, z, -0.5);
    c = ::fma(c, z, 1.0);
    double sn = -1.0 / 121645100408832000.0;  // -1/19!
    sn = ::fma(sn, z, 1.0 / 355687428096000.0);
    sn = ::fma(sn, z, -1.0 / 1307674368000.0);
    sn = ::fma(sn, z, 1.0 / 6227020800.0);
    sn = ::fma(sn, z, -1.0 / 39916800.0);
    sn = ::fma(sn, z, 1.0 / 362880.0);
    sn = ::fma(sn, z, -1.0 / 5040.0);
    sn = ::fma(sn, z, 1.0 / 120.0);
    sn = ::fma(sn, z, -1.0 / 6.0);
    sn = ::fma(sn, z, 1.0);
    sn *= a;
    switch (int(q) & 3) {
        case 0: return c;
        case 1: return -sn;
        case 2: return -c;
        default: return sn;
    }
}

// One standard normal from two words (Box-Muller, cosine branch).
HPT_HD inline double philox_normal(uint32_t a, uint32_t b) {
    const double u1 = philox_unit(a), u2 = philox_unit(b);
    return ::sqrt(-2.0 * philox_log(u1)) * philox_cos_2pi(u2);
}

// Element value of fill_random: normal(a = mean, b = std) from words 0 and 1 of the draw, or
// uniform in (a = low, b = high) from word 0.
HPT_HD inline double philox_fill_value(bool normal, double a, double b, const Philox4& r) {
    return normal ? ::fma(b, philox_normal(r.v[0], r.v[1]), a) : ::fma(b - a, philox_unit(r.v[0]), a);
}

}  // namespace hpt
