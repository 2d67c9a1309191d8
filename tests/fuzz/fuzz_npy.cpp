// .npy arrays: parse or throw hpt::Error; the data always matches shape x itemsize.
#include <cstdint>
#include <cstdlib>

#include "engine/core/error.h"
#include "engine/data/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const hpt::data::NpyArray a = hpt::data::parse_npy(data, size, "fuzz.npy");
        if (uint64_t(a.numel()) * uint64_t(a.item_size) != a.data.size()) std::abort();
        const std::vector<int64_t> v = hpt::data::npy_to_int64(a, "fuzz.npy");
        if (int64_t(v.size()) != a.numel()) std::abort();
    } catch (const hpt::Error&) {
    }
    return 0;
}
