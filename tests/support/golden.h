// Reading the golden files that tools/*.py write (tests/data/golden/), and regenerating the
// seeded-uniform tensors those scripts fill models with (tools/philox.py has the rule).
#pragma once
#include <cstdint>
#include <string>

#include "engine/core/tensor.h"
#include "engine/io/safetensors.h"

namespace hpt::test {

std::string golden_path(const std::string& file);  // tests/data/golden/<file>
io::Safetensors load_golden(const std::string& file);
const Tensor& golden_tensor(const io::Safetensors& g, const std::string& name);  // throws if absent

// float32(lo + (hi - lo) * ((philox(seed, stream, j).v[0] >> 8) * 2^-24)) for element j.
Tensor seeded_uniform(const Shape& shape, uint64_t seed, uint64_t stream, double lo, double hi);
uint32_t crc32_of(const Tensor& t);  // zlib CRC-32 of the contiguous host bytes

}  // namespace hpt::test
