// The per-pixel arithmetic of the augmentation, shared by the CPU and CUDA paths so that both
// compute the same formulas in the same order (float32, values in [0, 1]).
//
// These mirror torchvision 0.14's tensor path on float images (functional_tensor.py):
//   _blend(a, b, r)   = clamp(r * a + (1 - r) * b, 0, 1), (1 - r) formed in double as Python does
//   brightness        = _blend(x, 0, f)
//   contrast          = _blend(x, mean(gray(x)), f)      (the mean over the whole image)
//   saturation        = _blend(x, gray(x), f)            (3 channels only)
//   hue               = _hsv2rgb(h + f mod 1, s, v) of _rgb2hsv(x)  (3 channels only)
//   gray(x)           = 0.2989 r + 0.587 g + 0.114 b
// and the bilinear resize of F.resize(..., antialias=False): half-pixel centres
// (align_corners=False), the source index clamped at 0, neighbours clamped at the border.
#pragma once
#include <cstdint>
#include <math.h>
#include <stdint.h>

#include "engine/core/dtype.h"

namespace hpt::ssl {

HPT_HD inline float clamp01(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }

HPT_HD inline float gray_of(float r, float g, float b) { return 0.2989f * r + 0.587f * g + 0.114f * b; }

// torchvision's _blend with img2 = `other`.
struct Blend {
    float a, b;
    HPT_HD explicit Blend(float ratio) : a(ratio), b(float(1.0 - double(ratio))) {}
    HPT_HD float operator()(float x, float other) const { return clamp01(a * x + b * other); }
};

// One source coordinate of the bilinear resize: out = w0 * src[i0] + w1 * src[i1].
struct LinearTap {
    int32_t i0, i1;
    float w0, w1;
};

// PyTorch's upsample_bilinear2d (align_corners=False, no scale_factor) along one axis: output
// `o` of `out` samples `in` input pixels starting at `start`, scale = float(in) / float(out)
// (tap_scale; a caller that makes many taps of one axis divides once).
HPT_HD inline float tap_scale(int32_t in, int32_t out) { return float(in) / float(out); }
HPT_HD inline LinearTap linear_tap_scaled(int32_t o, int32_t in, float scale, int32_t start) {
    float src = scale * (float(o) + 0.5f) - 0.5f;
    if (src < 0.f) src = 0.f;
    int32_t i = int32_t(floorf(src));
    if (i > in - 1) i = in - 1;
    float l = src - float(i);
    l = l < 0.f ? 0.f : (l > 1.f ? 1.f : l);
    LinearTap t;
    t.i0 = start + i;
    t.i1 = start + (i < in - 1 ? i + 1 : i);
    t.w1 = l;
    t.w0 = 1.f - l;
    return t;
}
HPT_HD inline LinearTap linear_tap(int32_t o, int32_t in, int32_t out, int32_t start) {
    return linear_tap_scaled(o, in, tap_scale(in, out), start);
}

// torchvision's _rgb2hsv -> hue shift -> _hsv2rgb, in place. Written so that the CPU loop over a
// row vectorises: every arm is computed before a select picks one (compilers do not speculate
// arithmetic out of a conditional arm while float traps are on), conditions are combined with
// & and |, and there are no fmaxf/fminf (their NaN rules block vectorisation). Divisions stay
// divisions, as in torchvision, not reciprocals.
HPT_HD inline void hue_shift(float& r, float& g, float& b, float hue) {
    const float mx = r > g ? r : g, mn = r < g ? r : g;
    const float maxc = mx > b ? mx : b;
    const float minc = mn < b ? mn : b;
    const bool eqc = maxc == minc;
    const float cr = maxc - minc;
    const float s = cr / (eqc ? 1.f : maxc);
    const float crd = eqc ? 1.f : cr;
    const float rc = (maxc - r) / crd, gc = (maxc - g) / crd, bc = (maxc - b) / crd;
    const bool is_r = maxc == r, is_g = (maxc == g) & !is_r;
    // Exactly one of torch's three masked terms is selected; the other two are zeros.
    const float hr = bc - gc, hg = 2.f + rc - bc, hb = 4.f + gc - rc;
    float h = is_r ? hr : (is_g ? hg : hb);
    h = h / 6.f + 1.f;
    h = h - floorf(h);  // torch.fmod(x, 1) for x > 0
    h = h + hue;
    h = h - floorf(h);  // Python's % 1.0
    const float v = maxc;
    const float h6 = h * 6.f;
    const float fi = floorf(h6);
    const float f = h6 - fi;
    const float p = clamp01(v * (1.f - s));
    const float q = clamp01(v * (1.f - s * f));
    const float t = clamp01(v * (1.f - s * (1.f - f)));
    const float fi6 = fi - 6.f;
    const float i = fi >= 6.f ? fi6 : fi;  // h may round up to exactly 1
    const bool i0 = i == 0.f, i1 = i == 1.f, i2 = i == 2.f, i3 = i == 3.f, i4 = i == 4.f, i5 = i == 5.f;
    // Sector i: (v,t,p) (q,v,p) (p,v,t) (p,q,v) (t,p,v) (v,p,q)
    r = (i0 | i5) ? v : (i1 ? q : (i4 ? t : p));
    g = (i1 | i2) ? v : (i0 ? t : (i3 ? q : p));
    b = (i3 | i4) ? v : (i2 ? t : (i5 ? q : p));
}

// Index into [0, n) with reflection that does not repeat the edge (torch's "reflect" padding),
// folded as often as needed so that any radius works on any size.
HPT_HD inline int32_t reflect_index(int32_t i, int32_t n) {
    if (n == 1) return 0;
    const int32_t period = 2 * (n - 1);
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - i;
}

// torchvision's _get_gaussian_kernel1d for kernel size 2 * radius + 1: exp(-x^2 / (2 sigma^2))
// at x = -radius..radius, normalised to sum 1 (sum accumulated left to right in float).
HPT_HD inline void gaussian_weights(float sigma, int32_t radius, float* w) {
    float sum = 0.f;
    for (int32_t k = -radius; k <= radius; ++k) {
        const float x = float(k) / sigma;
        const float v = expf(-0.5f * (x * x));
        w[k + radius] = v;
        sum += v;
    }
    for (int32_t k = 0; k <= 2 * radius; ++k) w[k] /= sum;
}

}  // namespace hpt::ssl
