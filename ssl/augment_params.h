// The augmentation policy's configuration and its random draws, shared by the CPU and CUDA paths.
//
// Every draw of one view is a pure function of (seed, epoch, sample, view): the Philox stream is
// built from (epoch, view) and the position from sample * kDrawsPerView + a fixed slot per draw.
// So a view does not depend on the batch it is in, the thread that makes it or the device, and
// the CPU and the GPU draw the same parameters because they call the same function.
//
// Draw layout (one Philox block = four 32-bit words per slot):
//   slots 0..crop_attempts-1   crop attempt k: area scale, log aspect ratio, top, left
//   slot  kSlotJitter          apply?, then three words for a Fisher-Yates shuffle of the 4 ops
//   slot  kSlotJitter + 1      brightness, contrast, saturation, hue factors
//   slot  kSlotMisc            grayscale?, blur?, blur sigma, flip?
// Every slot is drawn whether or not its transform is on, so switching one transform off (a named
// policy) leaves the draws of the others unchanged.
#pragma once
#include <cstdint>
#include <math.h>
#include <stdint.h>

#include "engine/core/dtype.h"
#include "engine/core/philox.h"

namespace hpt::ssl {

constexpr int kMaxCropAttempts = 16;
constexpr int kSlotJitter = 16;
constexpr int kSlotMisc = 18;
constexpr uint64_t kDrawsPerView = 32;  // Philox positions reserved per (sample, view)
constexpr int32_t kMaxBlurRadius = 64;   // a sanity bound (sigma 21 under the 3-sigma rule)
// Tags the high bits of the stream so augmentation never shares draws with shuffling or init.
constexpr uint64_t kAugmentStreamTag = 0x4155470000000000ull;  // "AUG"

// Trivially copyable: it is passed by value to the CUDA kernel.
struct AugmentConfig {
    int32_t out_h = 32, out_w = 32;  // output size of both views

    // 1. RandomResizedCrop; with crop = false the whole image is resized.
    bool crop = true;
    double scale_min = 0.2, scale_max = 1.0;          // area fraction, uniform
    double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;  // w/h, log-uniform
    int32_t crop_attempts = 10;                        // then torchvision's centre-crop fallback

    // 2. ColorJitter, applied with probability jitter_p; the four ops in a random order.
    // Factors: brightness/contrast/saturation U(max(0, 1 - x), 1 + x), hue U(-x, x); 0 = op off.
    // HPT uses hue 0.4; MoCo v2 used 0.1.
    double jitter_p = 0.8;
    double brightness = 0.4, contrast = 0.4, saturation = 0.4, hue = 0.4;

    // 3. RandomGrayscale (keeps the channel count).
    double gray_p = 0.2;

    // 4. GaussianBlur, separable, reflect padding; radius = ::ceil(blur_radius_sigmas * sigma).
    double blur_p = 0.5;
    double blur_sigma_min = 0.1, blur_sigma_max = 2.0;
    double blur_radius_sigmas = 3.0;

    // 5. Horizontal flip.
    double flip_p = 0.5;

    // 6. Normalize: (x - mean[c]) / std[c] on [0, 1] values; set from the dataset's own
    // statistics (set_normalization). Channel c of the output uses entry c.
    float mean[3] = {0.f, 0.f, 0.f};
    float std[3] = {1.f, 1.f, 1.f};

    // 1-channel images: replicate to 3 channels before everything else (then the colour ops
    // apply); otherwise the views keep 1 channel and saturation, hue and grayscale are no-ops.
    bool gray_to_rgb = false;
};

// The jitter ops, numbered as torchvision's ColorJitter numbers them (fn_idx).
enum JitterOp : uint8_t { kBrightness = 0, kContrast = 1, kSaturation = 2, kHue = 3 };

// Everything drawn for one view. Ops that are off carry identity values and are not listed.
struct ViewParams {
    int32_t crop_top = 0, crop_left = 0, crop_h = 0, crop_w = 0;  // box in the input image
    int32_t n_ops = 0;          // jitter ops to apply, in order (0 when jitter is not applied)
    uint8_t ops[4] = {0, 1, 2, 3};
    float brightness = 1.f, contrast = 1.f, saturation = 1.f, hue = 0.f;
    int32_t gray = 0;           // convert to grayscale
    float blur_sigma = 0.f;     // 0: no blur
    int32_t blur_radius = 0;    // kernel size 2 * radius + 1
    int32_t flip = 0;           // horizontal flip
};

HPT_HD inline uint64_t augment_stream(int64_t epoch, int view) {
    return kAugmentStreamTag | (uint64_t(epoch) << 1) | uint64_t(view & 1);
}

// U(lo, hi) from one word: lo + (hi - lo) u with u in (0, 1), as an explicit fma so that a
// compiler's choice to fuse (or not) cannot make the CPU and the GPU differ.
HPT_HD inline double draw_uniform(uint32_t word, double lo, double hi) { return ::fma(hi - lo, philox_unit(word), lo); }

// exp(x) from operations every platform rounds the same way (fma, rint, ldexp), like philox_log:
// glibc's and CUDA's exp may differ in the last bit, and a crop size is rint() of a product with
// it. x = k ln2 + r with |r| <= ln2 / 2, then a degree-14 Taylor polynomial in r (error below
// 1e-17 relative). Within 2 ulp of exp for |x| < 700.
HPT_HD inline double aug_exp(double x) {
    const double k = ::rint(x * 1.4426950408889634);
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    const double r = ::fma(-k, ln2_lo, ::fma(-k, ln2_hi, x));
    double p = 1.0 / 87178291200.0;  // 1/14!
    const double inv_fact[14] = {1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0,
                                 1.0 / 362880.0,     1.0 / 40320.0,     1.0 / 5040.0,     1.0 / 720.0,
                                 1.0 / 120.0,        1.0 / 24.0,        1.0 / 6.0,        0.5,
                                 1.0,                1.0};
    for (int i = 0; i < 14; ++i) p = ::fma(p, r, inv_fact[i]);
    return ::ldexp(p, int(k));
}

// Uniform integer in [0, n) (n >= 1), by the multiply-shift rule (bias below n / 2^32).
HPT_HD inline int32_t draw_below(uint32_t word, int32_t n) { return int32_t((uint64_t(word) * uint64_t(n)) >> 32); }
HPT_HD inline bool draw_bernoulli(uint32_t word, double p) { return philox_unit(word) < p; }

// Blur kernel radius for a sigma under the config's rule (at least 1 for any sigma > 0). Radii
// above kMaxBlurRadius come out as kMaxBlurRadius + 1, which check_config refuses: converting
// ceil(3 * 1e9) to int32 directly overflowed, and a sigma of 1e9 passed the check as radius 1.
HPT_HD inline int32_t blur_radius_for(double sigma, double radius_sigmas) {
    const double r = ::ceil(radius_sigmas * sigma);
    return !(r >= 1) ? 1 : r > kMaxBlurRadius ? kMaxBlurRadius + 1 : int32_t(r);
}

// torchvision's RandomResizedCrop.get_params, drawn from the view's Philox slots. Python's
// round() rounds half to even, as rint() does in the default rounding mode. Only correctly
// rounded operations (and philox_log / aug_exp, built from them) enter the crop size, so the CPU
// and the GPU compute the same box bit for bit.
HPT_HD inline void draw_crop(uint64_t seed, uint64_t stream, uint64_t base, const AugmentConfig& cfg,
                             int32_t in_h, int32_t in_w, ViewParams& p) {
    if (cfg.crop) {
        const double area = double(in_h) * double(in_w);
        const double log_lo = philox_log(cfg.ratio_min), log_hi = philox_log(cfg.ratio_max);
        const int attempts = cfg.crop_attempts < kMaxCropAttempts ? cfg.crop_attempts : kMaxCropAttempts;
        for (int k = 0; k < attempts; ++k) {
            const Philox4 r = philox_at(seed, stream, base + uint64_t(k));
            const double target_area = area * draw_uniform(r.v[0], cfg.scale_min, cfg.scale_max);
            const double aspect = aug_exp(draw_uniform(r.v[1], log_lo, log_hi));
            const int32_t w = int32_t(::rint(::sqrt(target_area * aspect)));
            const int32_t h = int32_t(::rint(::sqrt(target_area / aspect)));
            if (0 < w && w <= in_w && 0 < h && h <= in_h) {
                p.crop_top = draw_below(r.v[2], in_h - h + 1);
                p.crop_left = draw_below(r.v[3], in_w - w + 1);
                p.crop_h = h;
                p.crop_w = w;
                return;
            }
        }
        // Fallback: the central crop of the extreme allowed ratio, or the whole image.
        const double in_ratio = double(in_w) / double(in_h);
        int32_t w = in_w, h = in_h;
        if (in_ratio < cfg.ratio_min) {
            h = int32_t(::rint(double(w) / cfg.ratio_min));
        } else if (in_ratio > cfg.ratio_max) {
            w = int32_t(::rint(double(h) * cfg.ratio_max));
        }
        p.crop_top = (in_h - h) / 2;
        p.crop_left = (in_w - w) / 2;
        p.crop_h = h;
        p.crop_w = w;
        return;
    }
    p.crop_top = p.crop_left = 0;
    p.crop_h = in_h;
    p.crop_w = in_w;
}

HPT_HD inline ViewParams draw_view_params(uint64_t seed, int64_t epoch, int64_t sample, int view,
                                          const AugmentConfig& cfg, int32_t in_h, int32_t in_w) {
    ViewParams p;
    const uint64_t stream = augment_stream(epoch, view);
    const uint64_t base = uint64_t(sample) * kDrawsPerView;
    draw_crop(seed, stream, base, cfg, in_h, in_w, p);

    const Philox4 j0 = philox_at(seed, stream, base + kSlotJitter);
    const Philox4 j1 = philox_at(seed, stream, base + kSlotJitter + 1);
    if (draw_bernoulli(j0.v[0], cfg.jitter_p)) {
        // Fisher-Yates: slot i takes a uniform pick among the first i + 1 entries.
        uint8_t order[4] = {0, 1, 2, 3};
        for (int i = 3; i >= 1; --i) {
            const int k = draw_below(j0.v[4 - i], i + 1);
            const uint8_t t = order[i];
            order[i] = order[k];
            order[k] = t;
        }
        const double b = cfg.brightness, c = cfg.contrast, s = cfg.saturation;
        const float fb = float(draw_uniform(j1.v[0], b < 1 ? 1 - b : 0, 1 + b));
        const float fc = float(draw_uniform(j1.v[1], c < 1 ? 1 - c : 0, 1 + c));
        const float fs = float(draw_uniform(j1.v[2], s < 1 ? 1 - s : 0, 1 + s));
        const float fh = float(draw_uniform(j1.v[3], -cfg.hue, cfg.hue));
        const bool on[4] = {b > 0, c > 0, s > 0, cfg.hue > 0};
        p.brightness = on[kBrightness] ? fb : 1.f;
        p.contrast = on[kContrast] ? fc : 1.f;
        p.saturation = on[kSaturation] ? fs : 1.f;
        p.hue = on[kHue] ? fh : 0.f;
        p.n_ops = 0;
        for (int i = 0; i < 4; ++i)
            if (on[order[i]]) p.ops[p.n_ops++] = order[i];
    }

    const Philox4 m = philox_at(seed, stream, base + kSlotMisc);
    p.gray = draw_bernoulli(m.v[0], cfg.gray_p) ? 1 : 0;
    if (draw_bernoulli(m.v[1], cfg.blur_p)) {
        const double sigma = draw_uniform(m.v[2], cfg.blur_sigma_min, cfg.blur_sigma_max);
        p.blur_sigma = float(sigma);
        p.blur_radius = blur_radius_for(double(p.blur_sigma), cfg.blur_radius_sigmas);
    }
    p.flip = draw_bernoulli(m.v[3], cfg.flip_p) ? 1 : 0;
    return p;
}

// Whether a view drawn under cfg can have contrast among its jitter ops (draw_view_params: jitter
// applied with probability jitter_p, contrast listed when its range is not zero); the GPU skips
// the contrast means' pass otherwise.
HPT_HD inline bool may_draw_contrast(const AugmentConfig& cfg) { return cfg.jitter_p > 0 && cfg.contrast > 0; }

// The largest blur radius the config can draw (sizes the GPU's shared-memory tiles).
HPT_HD inline int32_t max_blur_radius(const AugmentConfig& cfg) {
    return cfg.blur_p > 0 ? blur_radius_for(double(float(cfg.blur_sigma_max)), cfg.blur_radius_sigmas) : 0;
}

}  // namespace hpt::ssl
