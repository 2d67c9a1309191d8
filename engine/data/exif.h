// A JPEG's EXIF orientation: phones store photos as the sensor saw them and record in EXIF how to
// turn them upright (tag 0x0112). stb_image ignores it, so such photos loaded sideways.
#pragma once
#include <cstddef>
#include <cstdint>

namespace hpt::data {

// The orientation (1-8, 1 = as stored) from the APP1 "Exif" segment of a JPEG; `i` is the offset
// after SOI. 1 when the file has none or it is malformed: bytes are read only within bounds.
int jpeg_exif_orientation(const uint8_t* p, size_t n, size_t i);

// Where output pixel (y, x) of an image turned upright by `orientation` comes from, in an image
// stored as h x w; the output is w x h for orientations 5-8 (checked against PIL's exif_transpose).
inline void exif_source(int orientation, int h, int w, int y, int x, int& sy, int& sx) {
    switch (orientation) {
        case 2: sy = y, sx = w - 1 - x; break;
        case 3: sy = h - 1 - y, sx = w - 1 - x; break;
        case 4: sy = h - 1 - y, sx = x; break;
        case 5: sy = x, sx = y; break;
        case 6: sy = h - 1 - x, sx = y; break;
        case 7: sy = h - 1 - x, sx = w - 1 - y; break;
        case 8: sy = x, sx = w - 1 - y; break;
        default: sy = y, sx = x; break;
    }
}

}  // namespace hpt::data
