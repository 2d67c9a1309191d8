#include "ssl/preview.h"

#include <cstdint>
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/core/error.h"
#include "engine/data/dataset.h"

// The writer's functions stay private to this file (static), so they cannot clash with another
// copy of stb_image_write linked into the same program.
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb/stb_image_write.h>

namespace hpt::ssl {

namespace {

constexpr int kMinCell = 96;   // small images are magnified to about this height...
constexpr int kMaxCell = 512;  // ...and no cell side exceeds this (a 1x5000 image made a 1,440,016-pixel-wide grid)
constexpr int kGap = 4;

struct Canvas {
    int w, h;
    std::vector<uint8_t> rgb;
    Canvas(int w_, int h_) : w(w_), h(h_), rgb(size_t(w_) * h_ * 3, 40) {}
    void put(int x, int y, const uint8_t* c) {
        uint8_t* p = rgb.data() + (size_t(y) * w + x) * 3;
        p[0] = c[0];
        p[1] = c[1];
        p[2] = c[2];
    }
};

uint8_t to_u8(float v) { return uint8_t(std::lrint(std::min(1.f, std::max(0.f, v)) * 255.f)); }

// Draws an h x w image given as a function (y, x) -> RGB into a dh x dw box at (x0, y0), by
// nearest neighbour.
template <class Pixel>
void blit(Canvas& cv, int x0, int y0, int h, int w, int dh, int dw, const Pixel& pixel) {
    for (int y = 0; y < dh; ++y)
        for (int x = 0; x < dw; ++x) {
            uint8_t c[3];
            pixel(int(int64_t(y) * h / dh), int(int64_t(x) * w / dw), c);
            cv.put(x0 + x, y0 + y, c);
        }
}

}  // namespace

int64_t write_preview_grid(const data::Dataset& ds, const std::string& out_png, int64_t n_images,
                           const AugmentConfig& cfg_in, uint64_t seed) {
    HPT_CHECK(n_images >= 1, "preview: n_images must be at least 1, got ", n_images);
    const data::ImageSet& set = ds.train.size() ? ds.train : ds.test;
    HPT_CHECK(set.size() > 0, "preview: ", ds.path, " has no images");
    const int64_t n = std::min(n_images, set.size());
    const Tensor images = set.images.narrow(0, 0, n).contiguous();
    const int h = int(images.size(1)), w = int(images.size(2)), c = int(images.size(3));

    AugmentConfig cfg = cfg_in;
    const auto [mean, sd] = data::normalization_mean_std(set);
    set_normalization(cfg, mean, sd);
    std::vector<int64_t> samples(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) samples[size_t(i)] = i;
    const auto [v1, v2] = augment_batch(images, samples, cfg, seed, 0);
    const int vc = int(v1.size(1)), oh = cfg.out_h, ow = cfg.out_w;

    const int cell_h = std::max(h, oh), cell_w = std::max(w, ow);
    // Whole magnifications keep pixels square and sharp; a fraction shrinks what exceeds kMaxCell.
    double f = std::max(1, (kMinCell + cell_h - 1) / cell_h);
    f = std::min(f, double(kMaxCell) / double(std::max(cell_h, cell_w)));
    const auto fit = [f](int side) { return std::max(1, int(std::lround(side * f))); };
    const int W = 3 * fit(cell_w) + 4 * kGap, H = int(n) * (fit(cell_h) + kGap) + kGap;
    Canvas cv(W, H);
    const uint8_t* src = images.data<uint8_t>();
    const float* views[2] = {v1.data<float>(), v2.data<float>()};
    for (int64_t i = 0; i < n; ++i) {
        const int y0 = kGap + int(i) * (fit(cell_h) + kGap);
        blit(cv, kGap, y0, h, w, fit(h), fit(w), [&](int y, int x, uint8_t* out) {
            const uint8_t* p = src + ((i * h + y) * w + x) * c;
            for (int k = 0; k < 3; ++k) out[k] = p[c == 3 ? k : 0];
        });
        for (int v = 0; v < 2; ++v) {
            const float* img = views[v] + i * vc * oh * ow;
            blit(cv, kGap + (v + 1) * (fit(cell_w) + kGap), y0, oh, ow, fit(oh), fit(ow), [&](int y, int x, uint8_t* out) {
                for (int k = 0; k < 3; ++k) {
                    const int ch = vc == 3 ? k : 0;
                    out[k] = to_u8(img[(ch * oh + y) * ow + x] * cfg.std[ch] + cfg.mean[ch]);
                }
            });
        }
    }
    HPT_CHECK(stbi_write_png(out_png.c_str(), W, H, 3, cv.rgb.data(), W * 3) != 0, "preview: cannot write ",
              out_png);
    return n;
}

}  // namespace hpt::ssl
