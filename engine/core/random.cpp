#include "engine/core/random.h"

#include "engine/autograd/grad_mode.h"
#include "engine/core/philox.h"
#include "engine/ops/ops.h"
#include <cstdint>

namespace hpt {

uint32_t Generator::next_u32() { return philox_at(seed_, stream_, position_++).v[0]; }

double Generator::next_unit() { return philox_unit(next_u32()); }

double Generator::next_normal() {
    const Philox4 r = philox_at(seed_, stream_, position_++);
    return philox_normal(r.v[0], r.v[1]);
}

int64_t Generator::next_below(int64_t n) {
    HPT_CHECK(n > 0, "Generator::next_below(", n, ")");
    // 64 random bits make the modulo bias negligible for any n we use.
    const Philox4 r = philox_at(seed_, stream_, position_++);
    const uint64_t x = (uint64_t(r.v[0]) << 32) | r.v[1];
    return int64_t(x % uint64_t(n));
}

std::vector<int64_t> Generator::permutation(int64_t n) {
    std::vector<int64_t> p(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) p[size_t(i)] = i;
    for (int64_t i = n - 1; i > 0; --i) std::swap(p[size_t(i)], p[size_t(next_below(i + 1))]);
    return p;
}

void Generator::fill_(const Tensor& t, int dist, double a, double b) {
    NoGradGuard ng;
    RandomAttrs r;
    r.dist = RandomAttrs::Dist(dist);
    r.seed = seed_, r.stream = stream_, r.offset = position_, r.a = a, r.b = b;
    if (t.is_contiguous()) {
        fill_random(t, r);
    } else {
        Tensor tmp = empty(t.shape(), t.dtype(), t.device());
        fill_random(tmp, r);
        t.copy_(tmp);
    }
    position_ += uint64_t(t.numel());
}

void Generator::normal_(const Tensor& t, double mean, double std) { fill_(t, RandomAttrs::normal, mean, std); }

void Generator::uniform_(const Tensor& t, double lo, double hi) { fill_(t, RandomAttrs::uniform, lo, hi); }

Tensor Generator::randn(const Shape& s, DType dt, Device d) {
    Tensor t = empty(s, dt, d);
    normal_(t);
    return t;
}

Tensor Generator::rand(const Shape& s, DType dt, Device d) {
    Tensor t = empty(s, dt, d);
    uniform_(t);
    return t;
}

}  // namespace hpt
