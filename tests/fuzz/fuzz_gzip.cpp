// gzip streams: any bytes must decompress or throw hpt::Error, within the output limit.
#include "engine/core/error.h"
#include "engine/data/gzip.h"
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        hpt::data::gunzip(data, size, "fuzz.gz", 1 << 24);
    } catch (const hpt::Error&) {
    }
    // The streaming reader too, in small reads, as the IDX reader uses it.
    try {
        hpt::data::ByteReader r(data, size, "fuzz.gz");
        uint8_t buf[7];
        while (r.read(buf, sizeof buf) == sizeof buf && r.position() < (1 << 22)) {
        }
        (void)r.max_remaining();
    } catch (const hpt::Error&) {
    }
    return 0;
}
