// A seeded stream of random numbers over Philox: every draw advances a 64-bit position, and
// tensors are filled by the fill_random kernel at (seed, stream, position), so CPU and GPU give
// the same values. Distinct purposes (init, shuffling, augmentation) use distinct streams.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/core/tensor.h"

namespace hpt {

class Generator {
public:
    explicit Generator(uint64_t seed = 0, uint64_t stream = 0) : seed_(seed), stream_(stream) {}

    uint64_t seed() const { return seed_; }
    uint64_t stream() const { return stream_; }
    uint64_t position() const { return position_; }
    void set_position(uint64_t p) { position_ = p; }

    uint32_t next_u32();
    double next_unit();                  // uniform in (0, 1)
    double next_normal();                // standard normal
    int64_t next_below(int64_t n);       // uniform integer in [0, n)
    std::vector<int64_t> permutation(int64_t n);

    void normal_(const Tensor& t, double mean = 0.0, double std = 1.0);
    void uniform_(const Tensor& t, double lo = 0.0, double hi = 1.0);
    Tensor randn(const Shape& s, DType dt = DType::f32, Device d = Device::cpu());
    Tensor rand(const Shape& s, DType dt = DType::f32, Device d = Device::cpu());

private:
    // Draws t's elements from distribution `dist` (RandomAttrs::Dist) with parameters a, b.
    void fill_(const Tensor& t, int dist, double a, double b);

    uint64_t seed_, stream_, position_ = 0;
};

}  // namespace hpt
