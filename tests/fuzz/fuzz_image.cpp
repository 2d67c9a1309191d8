// Image files through our stb_image wrapper (PNG, JPEG, BMP) and the resize that follows.
#include <cstdint>
#include <cstdlib>

#include "engine/core/error.h"
#include "engine/data/image_decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    (void)hpt::data::looks_like_image(data, size);
    try {
        const hpt::data::Image img = hpt::data::decode_image(data, size, "fuzz.img");
        if (img.pixels.size() != size_t(img.width) * size_t(img.height) * size_t(img.channels)) std::abort();
        if (int64_t(img.width) * img.height <= (1 << 16)) hpt::data::resize_image(img, 5, 3);
    } catch (const hpt::Error&) {
    }
    return 0;
}
