#include "tests/support/golden.h"

#include <cstdint>
#include <zlib.h>

#include "engine/core/philox.h"
#include "engine/core/error.h"

namespace hpt::test {

std::string golden_path(const std::string& file) { return std::string(HPT_SOURCE_DIR) + "/tests/data/golden/" + file; }

io::Safetensors load_golden(const std::string& file) { return io::load_safetensors(golden_path(file)); }

const Tensor& golden_tensor(const io::Safetensors& g, const std::string& name) {
    const Tensor* t = g.find(name);
    HPT_CHECK(t, "golden file has no tensor '", name, "'");
    return *t;
}

Tensor seeded_uniform(const Shape& shape, uint64_t seed, uint64_t stream, double lo, double hi) {
    Tensor t = empty(shape, DType::f32);
    float* p = t.data<float>();
    for (int64_t j = 0; j < t.numel(); ++j) {
        const double u = double(philox_at(seed, stream, uint64_t(j)).v[0] >> 8) * (1.0 / 16777216.0);
        p[j] = float(lo + (hi - lo) * u);
    }
    return t;
}

uint32_t crc32_of(const Tensor& t) {
    const Tensor h = t.to(Device::cpu()).contiguous();
    return uint32_t(crc32(0L, static_cast<const Bytef*>(h.data_ptr()), uInt(size_t(h.numel()) * h.element_size())));
}

}  // namespace hpt::test
