// IDX files (the MNIST format), raw or gzip-compressed: a big-endian magic 00 00 <type> <ndims>,
// one big-endian uint32 per dimension, then the data in C order. Only type 0x08 (unsigned byte)
// is read; it is the only one MNIST-style datasets use.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hpt::data {

struct IdxArray {
    std::vector<int64_t> dims;  // e.g. {60000, 28, 28} for images, {60000} for labels
    std::vector<uint8_t> data;  // product of dims bytes
};

// True when the content (after gunzip, if gzip) starts with an IDX magic of any type.
bool looks_like_idx(const uint8_t* data, size_t size);

// Parses an in-memory file; gzip is detected by its magic. Throws naming `origin` on a bad magic,
// a data type other than unsigned byte, a payload that is not exactly the dims' product,
// or corrupt gzip.
IdxArray parse_idx(const uint8_t* data, size_t size, const std::string& origin);
IdxArray read_idx(const std::string& path);

}  // namespace hpt::data
