// The digits CSV, plain or gzip: parse or throw hpt::Error; 64 pixels per label.
#include <cstdint>
#include <cstdlib>

#include "engine/core/error.h"
#include "engine/data/digits_csv.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    (void)hpt::data::looks_like_digits_csv(data, size);
    try {
        const hpt::data::DigitsCsv d = hpt::data::parse_digits_csv(data, size, "fuzz.csv");
        if (d.pixels.size() != d.labels.size() * 64 || int64_t(d.labels.size()) != d.count) std::abort();
    } catch (const hpt::Error&) {
    }
    return 0;
}
