// Image files (PNG, JPEG, BMP) decoded by stb_image into 8-bit gray or RGB, and resized.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hpt::data {

struct Image {
    int width = 0, height = 0, channels = 0;  // channels 1 or 3
    std::vector<uint8_t> pixels;              // height x width x channels
    int max16 = -1;                           // 16-bit files: their largest value (else -1)
};

bool has_image_extension(const std::string& path);  // .png .jpg .jpeg .bmp, any case
bool looks_like_image(const uint8_t* data, size_t size);  // PNG, JPEG or BMP magic

// Gray stays 1 channel, colour becomes 3; alpha is dropped; a JPEG is turned upright as its EXIF
// orientation says. Throws naming `origin` with stb's reason on anything it cannot decode, and
// refuses images over 2^26 pixels before decoding them. 16-bit PNGs are rounded to 8 bits.
Image decode_image(const uint8_t* data, size_t size, const std::string& origin);
// The width and height a file's header gives, without decoding it; false when it cannot be read.
bool image_dimensions(const std::string& path, int& width, int& height);
// Triangle filter: bilinear when enlarging, widened to average all covered pixels when shrinking.
Image resize_image(const Image& in, int width, int height);
Image gray_to_rgb(const Image& in);

}  // namespace hpt::data
