#include "engine/data/image_decode.h"

#include <cstdint>
#include <algorithm>
#include <climits>
#include <cstring>
#include <vector>

#include "engine/core/error.h"
#include "engine/data/exif.h"
#include "engine/data/io.h"

// Only the formats we accept: less decoder surface for hostile files. Static, so no other copy of
// stb linked into a program can clash with ours.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_MAX_DIMENSIONS (1 << 16)
#define STB_IMAGE_RESIZE_STATIC
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#pragma GCC diagnostic pop

namespace hpt::data {

namespace {
constexpr int64_t kMaxPixels = int64_t(1) << 26;

// Where stb reads a JPEG from: its first marker may follow any number of 0xff fill bytes, so
// "ff ff d8" starts a JPEG as much as "ff d8" does (fuzz_image found the table check below skipped
// for the former). The offset after SOI, or 0 when stb would not take the file for a JPEG.
size_t jpeg_after_soi(const uint8_t* p, size_t n) {
    if (n < 2 || p[0] != 0xff) return 0;
    size_t i = 1;
    while (i < n && p[i] == 0xff) ++i;
    return i < n && p[i] == 0xd8 ? i + 1 : 0;
}

// Debian's stb_image (2.27) trusts a JPEG's Huffman table sizes: counts summing past 256 write
// past its 257-entry tables (nothings/stb #1289, #1291; fixed upstream in 2.28). Our fuzzer found
// it too. Every DHT segment is checked here before stb sees the file; i is the offset after SOI.
// The fuzzer also found a scan decoding with a table no DHT had defined: stb then reads its
// uninitialised (malloc'd) table and indexes past maxcode[] (UBSan). Each scan's tables must exist.
bool jpeg_huffman_tables_ok(const uint8_t* p, size_t n, size_t i, std::string* why) {
    bool defined[2][4] = {};  // [DC, AC][table id]
    while (i + 4 <= n) {
        if (p[i] != 0xff) {  // entropy-coded data between markers
            ++i;
            continue;
        }
        const uint8_t m = p[i + 1];
        // Fill bytes, stuffed zeros, RSTn, TEM and SOI have no length field.
        if (m == 0xff) {
            ++i;
            continue;
        }
        if (m == 0x00 || m == 0x01 || m == 0xd8 || (m >= 0xd0 && m <= 0xd7)) {
            i += 2;
            continue;
        }
        if (m == 0xd9) break;  // EOI
        const size_t len = size_t(p[i + 2]) << 8 | p[i + 3];
        if (len < 2) {
            *why = "bad JPEG segment length";
            return false;
        }
        if (m == 0xc4) {
            const size_t end = std::min(n, i + 2 + len);
            for (size_t t = i + 4; t < end;) {
                if (end - t < 17) {
                    *why = "truncated JPEG Huffman table";
                    return false;
                }
                size_t total = 0;
                for (int k = 1; k <= 16; ++k) total += p[t + k];
                if (total > 256) {
                    *why = "JPEG Huffman table with more than 256 codes";
                    return false;
                }
                if ((p[t] >> 4) < 2 && (p[t] & 15) < 4) defined[p[t] >> 4][p[t] & 15] = true;  // stb refuses others
                t += 17 + total;
            }
        }
        if (m == 0xda && len >= 3 && i + 2 + len <= n) {  // SOS: Ns, Ns x (Cs, Td|Ta), Ss, Se, Ah|Al
            const size_t ns = p[i + 4];
            if (len >= 6 + 2 * ns) {
                const uint8_t ss = p[i + 5 + 2 * ns], se = p[i + 6 + 2 * ns];
                for (size_t k = 0; k < ns; ++k) {
                    const uint8_t td = p[i + 6 + 2 * k] >> 4, ta = p[i + 6 + 2 * k] & 15;
                    // A DC scan (or a baseline one) decodes with DC tables, an AC band with AC ones.
                    if ((ss == 0 && td < 4 && !defined[0][td]) || (se > 0 && ta < 4 && !defined[1][ta])) {
                        *why = "a scan uses a Huffman table that no DHT defines";
                        return false;
                    }
                }
            }
        }
        i += 2 + len;
    }
    return true;
}

// stb leaves the reason empty for some truncated files.
const char* reason() {
    const char* r = stbi_failure_reason();
    return r && *r ? r : "corrupt or truncated";
}
}  // namespace

bool has_image_extension(const std::string& path) {
    const size_t dot = path.rfind('.');
    if (dot == std::string::npos) return false;
    const std::string ext = lower(path.substr(dot));
    return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

bool looks_like_image(const uint8_t* p, size_t n) {
    return (n >= 8 && std::memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0) || (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) ||
           (n >= 2 && p[0] == 'B' && p[1] == 'M');
}

bool image_dimensions(const std::string& path, int& width, int& height) {
    int comp = 0;
    try {
        const std::vector<uint8_t> bytes = read_file(path);  // stb is built without stdio
        return bytes.size() <= size_t(INT32_MAX) && stbi_info_from_memory(bytes.data(), int(bytes.size()), &width, &height, &comp);
    } catch (const std::exception&) {
        return false;
    }
}

Image decode_image(const uint8_t* data, size_t size, const std::string& origin) {
    if (size == 0) HPT_THROW(origin, ": empty file");
    if (size > size_t(INT_MAX)) HPT_THROW(origin, ": ", size, " bytes is too large for an image file");
    std::string why;
    const size_t body = jpeg_after_soi(data, size);
    if (body > 0 && !jpeg_huffman_tables_ok(data, size, body, &why)) HPT_THROW(origin, ": corrupt JPEG (", why, ")");
    int w = 0, h = 0, comp = 0;
    if (!stbi_info_from_memory(data, int(size), &w, &h, &comp))
        HPT_THROW(origin, ": not a readable PNG, JPEG or BMP image (", reason(), ")");
    if (w <= 0 || h <= 0 || int64_t(w) * h > kMaxPixels)
        HPT_THROW(origin, ": image of ", w, "x", h, " pixels is too large (at most 2^26 pixels, a guard against decompression bombs); "
                  "downscale it before loading");
    Image img;
    img.channels = comp >= 3 ? 3 : 1;
    int w2, h2, c2;
    stbi_uc* px = nullptr;
    std::vector<uint8_t> from16;
    if (stbi_is_16_bit_from_memory(data, int(size))) {
        // stb's own 8-bit load keeps the high byte (0xFF00 became 255, not 254): rounded here.
        stbi_us* p16 = stbi_load_16_from_memory(data, int(size), &w2, &h2, &c2, img.channels);
        if (!p16) HPT_THROW(origin, ": cannot decode image (", reason(), ")");
        from16.resize(size_t(w2) * size_t(h2) * size_t(img.channels));
        uint32_t largest = 0;
        for (size_t k = 0; k < from16.size(); ++k) {
            largest = std::max<uint32_t>(largest, p16[k]);
            from16[k] = uint8_t((uint32_t(p16[k]) * 255u + 32767u) / 65535u);
        }
        stbi_image_free(p16);
        img.max16 = int(largest);
    } else {
        px = stbi_load_from_memory(data, int(size), &w2, &h2, &c2, img.channels);
        if (!px) HPT_THROW(origin, ": cannot decode image (", reason(), ")");
    }
    const uint8_t* src = px ? px : from16.data();
    // Upright, as EXIF says (phone photos are stored as the sensor saw them).
    const int orientation = body > 0 ? jpeg_exif_orientation(data, size, body) : 1;
    const bool swap = orientation >= 5;
    img.width = swap ? h2 : w2;
    img.height = swap ? w2 : h2;
    const size_t c = size_t(img.channels);
    img.pixels.resize(size_t(w2) * size_t(h2) * c);
    if (orientation == 1) {
        std::memcpy(img.pixels.data(), src, img.pixels.size());
    } else {
        for (int y = 0; y < img.height; ++y)
            for (int x = 0; x < img.width; ++x) {
                int sy, sx;
                exif_source(orientation, h2, w2, y, x, sy, sx);
                std::memcpy(&img.pixels[(size_t(y) * size_t(img.width) + size_t(x)) * c],
                            src + (size_t(sy) * size_t(w2) + size_t(sx)) * c, c);
            }
    }
    if (px) stbi_image_free(px);
    return img;
}

Image resize_image(const Image& in, int width, int height) {
    if (in.width == width && in.height == height) return in;
    Image out;
    out.width = width;
    out.height = height;
    out.channels = in.channels;
    out.pixels.resize(size_t(width) * size_t(height) * size_t(in.channels));
    const int ok = stbir_resize_uint8_generic(in.pixels.data(), in.width, in.height, 0, out.pixels.data(), width, height,
                                              0, in.channels, STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP,
                                              STBIR_FILTER_TRIANGLE, STBIR_COLORSPACE_LINEAR, nullptr);
    HPT_CHECK(ok, "resize_image: stb_image_resize failed for ", in.width, "x", in.height, " -> ", width, "x", height);
    return out;
}

Image gray_to_rgb(const Image& in) {
    if (in.channels == 3) return in;
    Image out;
    out.width = in.width;
    out.height = in.height;
    out.channels = 3;
    out.pixels.resize(in.pixels.size() * 3);
    for (size_t i = 0; i < in.pixels.size(); ++i) out.pixels[3 * i] = out.pixels[3 * i + 1] = out.pixels[3 * i + 2] = in.pixels[i];
    return out;
}

}  // namespace hpt::data
