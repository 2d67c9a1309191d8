#include "engine/data/exif.h"

#include <cstring>

namespace hpt::data {

namespace {

// The orientation tag of a TIFF structure (EXIF's body) of n bytes, or 1.
int tiff_orientation(const uint8_t* t, size_t n) {
    if (n < 8) return 1;
    const bool le = t[0] == 'I' && t[1] == 'I';
    if (!le && !(t[0] == 'M' && t[1] == 'M')) return 1;
    const auto u16 = [&](size_t o) { return le ? uint32_t(t[o] | t[o + 1] << 8) : uint32_t(t[o] << 8 | t[o + 1]); };
    const auto u32 = [&](size_t o) { return le ? (u16(o) | u16(o + 2) << 16) : (u16(o) << 16 | u16(o + 2)); };
    if (u16(2) != 42) return 1;
    const size_t ifd = u32(4);
    if (ifd > n - 2) return 1;
    const size_t entries = u16(ifd);
    for (size_t k = 0; k < entries; ++k) {
        const size_t e = ifd + 2 + 12 * k;
        if (e > n - 12) return 1;
        if (u16(e) == 0x0112 && u16(e + 2) == 3 /* SHORT */) {
            const uint32_t v = u16(e + 8);
            return v >= 1 && v <= 8 ? int(v) : 1;
        }
    }
    return 1;
}

}  // namespace

int jpeg_exif_orientation(const uint8_t* p, size_t n, size_t i) {
    while (i + 4 <= n) {
        if (p[i] != 0xff) return 1;
        const uint8_t m = p[i + 1];
        if (m == 0xff) {  // fill byte
            ++i;
            continue;
        }
        if (m == 0xda || m == 0xd9) return 1;  // image data or its end: no EXIF before it
        if ((m >= 0xd0 && m <= 0xd7) || m == 0x01) {  // no length field
            i += 2;
            continue;
        }
        const size_t len = size_t(p[i + 2]) << 8 | p[i + 3];
        if (len < 2 || i + 2 + len > n) return 1;
        const uint8_t* seg = p + i + 4;
        const size_t seg_n = len - 2;
        if (m == 0xe1 && seg_n >= 6 && std::memcmp(seg, "Exif\0\0", 6) == 0) return tiff_orientation(seg + 6, seg_n - 6);
        i += 2 + len;
    }
    return 1;
}

}  // namespace hpt::data
