// The header of a safetensors file (safetensors.h describes the format), parsed and checked
// without making tensors: what the loader and the fuzz target share.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/core/dtype.h"

namespace hpt::io {

// The largest JSON header read (the format's own limit is 100 MB too).
constexpr uint64_t kMaxSafetensorsHeader = uint64_t(100) << 20;

struct SafetensorsEntry {
    std::string name;
    DType dtype = DType::f32;
    std::vector<int64_t> shape;
    uint64_t begin = 0, end = 0;  // byte range within the data section
};

struct SafetensorsHeader {
    std::vector<SafetensorsEntry> entries;  // in file order (by data offset)
    std::map<std::string, std::string> metadata;
    uint64_t data_offset = 0;  // where the data section starts in the file
};

// Checks the header length, the JSON, every dtype, shape and byte range against the `size`
// bytes of the file, and throws an hpt::Error naming `what` and the problem.
SafetensorsHeader parse_safetensors_header(const uint8_t* data, size_t size, const std::string& what);

}  // namespace hpt::io
