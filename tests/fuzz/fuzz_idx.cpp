// IDX files, raw or gzip: parse or throw hpt::Error; the data always matches the dims.
#include <cstdint>
#include <cstdlib>

#include "engine/core/error.h"
#include "engine/data/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    (void)hpt::data::looks_like_idx(data, size);
    try {
        const hpt::data::IdxArray a = hpt::data::parse_idx(data, size, "fuzz.idx");
        uint64_t n = 1;
        for (int64_t d : a.dims) n *= uint64_t(d);
        if (n != a.data.size()) std::abort();
    } catch (const hpt::Error&) {
    }
    return 0;
}
