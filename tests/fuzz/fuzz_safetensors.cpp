// safetensors headers (checkpoints, and torchvision weights converted by tools/): parse or throw
// hpt::Error. Every entry's byte range lies in the file and holds exactly its shape's elements.
#include <cstdint>
#include <cstdlib>

#include "engine/core/error.h"
#include "engine/io/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const hpt::io::SafetensorsHeader h =
            hpt::io::parse_safetensors_header(data, size, "fuzz.safetensors");
        if (h.data_offset > size) std::abort();
        uint64_t prev = 0;
        for (const hpt::io::SafetensorsEntry& e : h.entries) {
            if (e.begin > e.end || e.end > size - h.data_offset || e.begin < prev) std::abort();
            prev = e.begin;
            uint64_t n = hpt::dtype_size(e.dtype);
            for (int64_t d : e.shape) {
                if (d < 0) std::abort();
                n *= uint64_t(d);
            }
            if (n != e.end - e.begin) std::abort();
        }
    } catch (const hpt::Error&) {
    }
    return 0;
}
