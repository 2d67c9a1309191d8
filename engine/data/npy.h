// NumPy .npy arrays (format versions 1, 2 and 3): the header dict is parsed as the small Python
// literal it is, and the data is checked to be exactly shape x itemsize bytes. Integer and bool
// dtypes of either byte order are accepted; floats, objects and structured dtypes are refused,
// because nothing here needs them (images are '|u1', labels integers).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hpt::data {

struct NpyArray {
    std::string descr;            // as written, e.g. "|u1", "<i8"
    char kind = 'u';              // 'u' unsigned, 'i' signed, 'b' bool
    int item_size = 1;            // bytes per element
    bool big_endian = false;
    std::vector<int64_t> shape;   // C order
    std::vector<uint8_t> data;    // raw element bytes, shape's product x item_size

    int64_t numel() const;
};

bool is_npy(const uint8_t* data, size_t size);  // "\x93NUMPY"

NpyArray parse_npy(const uint8_t* data, size_t size, const std::string& origin);
// The elements as int64 (u8 to i64 for labels). Throws when a u64 value does not fit.
std::vector<int64_t> npy_to_int64(const NpyArray& a, const std::string& origin);

}  // namespace hpt::data
