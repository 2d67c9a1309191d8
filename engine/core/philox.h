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

// One standard normal from two words (Box-Muller, cosine branch).
HPT_HD inline double philox_normal(uint32_t a, uint32_t b) {
    const double u1 = philox_unit(a), u2 = philox_unit(b);
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

}  // namespace hpt
