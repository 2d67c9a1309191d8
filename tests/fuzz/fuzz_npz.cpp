// ZIP archives of .npy members, as the .npz loader reads them.
#include "engine/core/error.h"
#include "engine/data/npy.h"
#include "engine/data/zip.h"
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    (void)hpt::data::is_zip(data, size);
    try {
        for (const hpt::data::ZipMember& m : hpt::data::read_zip(data, size, "fuzz.npz", 1 << 26)) {
            try {
                hpt::data::parse_npy(m.data.data(), m.data.size(), "fuzz.npz:" + m.name);
            } catch (const hpt::Error&) {
            }
        }
    } catch (const hpt::Error&) {
    }
    return 0;
}
