// The CPU specification of the augmentation policy (see ssl/augment.h). One view is made by one
// thread, row by row, in a planar float image that stays in that core's cache:
//   pass 1  resize (horizontal taps of each source row computed once and reused by the output
//           rows that need them), then the jitter ops before contrast, summing the gray image
//           when contrast follows
//   pass 2  (only with contrast) contrast, the ops after it, grayscale
//   finish  without blur: normalise and flip straight into the output row; with blur: the
//           horizontal blur in place per row, then a vertical pass that blurs, normalises and
//           flips into the output
// Every loop runs along a row of one plane, so the compiler vectorises the colour ops.
#include "ssl/augment.h"

#include <cstdint>
#include <algorithm>
#include <cstring>

#include "engine/core/error.h"
#include "kernels/cpu/parallel.h"
#include "ssl/augment_pixel.h"

#ifdef HPT_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace hpt::ssl {

// ---------------------------------------------------------------- policies and config

const std::vector<std::string>& policy_names() {
    static const std::vector<std::string> names = {"full", "no_gray", "no_color", "crop_blur", "crop_only"};
    return names;
}

void apply_policy(AugmentConfig& cfg, const std::string& name) {
    if (name == "full") return;
    if (name == "no_gray") {
        cfg.gray_p = 0;
    } else if (name == "no_color") {
        cfg.jitter_p = 0;
        cfg.gray_p = 0;
    } else if (name == "crop_blur") {
        cfg.jitter_p = 0;
        cfg.gray_p = 0;
        cfg.flip_p = 0;
    } else if (name == "crop_only") {
        cfg.jitter_p = 0;
        cfg.gray_p = 0;
        cfg.blur_p = 0;
        cfg.flip_p = 0;
    } else {
        HPT_THROW("unknown augmentation policy '", name, "' (full, no_gray, no_color, crop_blur, crop_only)");
    }
}

AugmentConfig augment_policy(const std::string& name, int32_t out_size) {
    HPT_CHECK(out_size > 0, "augment_policy: output size must be positive, got ", out_size);
    AugmentConfig cfg;
    cfg.out_h = cfg.out_w = out_size;
    apply_policy(cfg, name);
    return cfg;
}

void set_normalization(AugmentConfig& cfg, const std::vector<double>& mean, const std::vector<double>& std) {
    HPT_CHECK(mean.size() == std.size() && (mean.size() == 1 || mean.size() == 3),
              "set_normalization: need 1 or 3 means and stds, got ", mean.size(), " and ", std.size());
    for (int c = 0; c < 3; ++c) {
        const size_t k = mean.size() == 1 ? 0 : size_t(c);
        HPT_CHECK(std[k] > 0, "set_normalization: std of channel ", k, " is ", std[k], " (a constant channel?)");
        cfg.mean[c] = float(mean[k]);
        cfg.std[c] = float(std[k]);
    }
}

void check_config(const AugmentConfig& c) {
    auto prob = [](double p, const char* name) {
        HPT_CHECK(p >= 0 && p <= 1, "augment config: ", name, " = ", p, " is not a probability");
    };
    HPT_CHECK(c.out_h >= 1 && c.out_w >= 1 && c.out_h <= 65535 && c.out_w <= 65535, "augment config: output size ",
              c.out_h, "x", c.out_w);
    HPT_CHECK(c.scale_min > 0 && c.scale_min <= c.scale_max, "augment config: scale range [", c.scale_min, ", ",
              c.scale_max, "]");
    HPT_CHECK(c.ratio_min > 0 && c.ratio_min <= c.ratio_max, "augment config: ratio range [", c.ratio_min, ", ",
              c.ratio_max, "]");
    HPT_CHECK(c.crop_attempts >= 0 && c.crop_attempts <= kMaxCropAttempts, "augment config: crop_attempts ",
              c.crop_attempts, " (0 to ", kMaxCropAttempts, ")");
    prob(c.jitter_p, "jitter_p");
    prob(c.gray_p, "gray_p");
    prob(c.blur_p, "blur_p");
    prob(c.flip_p, "flip_p");
    HPT_CHECK(c.brightness >= 0 && c.contrast >= 0 && c.saturation >= 0, "augment config: brightness, contrast ",
              "and saturation must be >= 0");
    HPT_CHECK(c.hue >= 0 && c.hue <= 0.5, "augment config: hue ", c.hue, " (0 to 0.5)");
    if (c.blur_p > 0) {
        HPT_CHECK(c.blur_sigma_min > 0 && c.blur_sigma_min <= c.blur_sigma_max && c.blur_radius_sigmas > 0,
                  "augment config: blur sigma range [", c.blur_sigma_min, ", ", c.blur_sigma_max, "], radius ",
                  c.blur_radius_sigmas, " sigmas");
        HPT_CHECK(max_blur_radius(c) <= kMaxBlurRadius, "augment config: blur sigma up to ", c.blur_sigma_max, " at ",
                  c.blur_radius_sigmas, " sigmas needs a blur radius above ", kMaxBlurRadius, " pixels");
    }
    for (int k = 0; k < 3; ++k) HPT_CHECK(c.std[k] > 0, "augment config: std[", k, "] = ", c.std[k]);
}

int64_t view_channels(const AugmentConfig& cfg, int64_t in_c) { return in_c == 1 && cfg.gray_to_rgb ? 3 : in_c; }

ViewParams identity_params(int32_t in_h, int32_t in_w) {
    ViewParams p;
    p.crop_h = in_h;
    p.crop_w = in_w;
    return p;
}

// ---------------------------------------------------------------- one view on the CPU

namespace {

struct Lut {
    float v[256];
    Lut() {
        for (int i = 0; i < 256; ++i) v[i] = float(i) / 255.f;  // as torchvision's img / 255
    }
};
const Lut kLut;

// The planes of one row of the working image.
struct Row {
    float* c[3];
    int32_t n;
};

void brightness_row(const Row& r, int nc, float f) {
    const Blend bl(f);
    for (int c = 0; c < nc; ++c) {
        float* x = r.c[c];
        for (int32_t i = 0; i < r.n; ++i) x[i] = bl(x[i], 0.f);
    }
}

void contrast_row(const Row& r, int nc, float f, float mean) {
    const Blend bl(f);
    for (int c = 0; c < nc; ++c) {
        float* x = r.c[c];
        for (int32_t i = 0; i < r.n; ++i) x[i] = bl(x[i], mean);
    }
}

void saturation_row(const Row& r, float f) {
    const Blend bl(f);
    float *R = r.c[0], *G = r.c[1], *B = r.c[2];
    for (int32_t i = 0; i < r.n; ++i) {
        const float g = gray_of(R[i], G[i], B[i]);
        R[i] = bl(R[i], g);
        G[i] = bl(G[i], g);
        B[i] = bl(B[i], g);
    }
}

void hue_row(const Row& r, float f) {
    float *R = r.c[0], *G = r.c[1], *B = r.c[2];
    for (int32_t i = 0; i < r.n; ++i) hue_shift(R[i], G[i], B[i], f);
}

void gray_row(const Row& r) {
    float *R = r.c[0], *G = r.c[1], *B = r.c[2];
    for (int32_t i = 0; i < r.n; ++i) R[i] = G[i] = B[i] = gray_of(R[i], G[i], B[i]);
}

// Sum of the row's gray image, in eight fixed lanes (vectorisable, and the same order on every
// run and thread count).
double gray_sum_row(const Row& r, int nc) {
    float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int32_t i = 0;
    if (nc == 3) {
        for (; i + 8 <= r.n; i += 8)
            for (int k = 0; k < 8; ++k) lane[k] += gray_of(r.c[0][i + k], r.c[1][i + k], r.c[2][i + k]);
    } else {
        for (; i + 8 <= r.n; i += 8)
            for (int k = 0; k < 8; ++k) lane[k] += r.c[0][i + k];
    }
    double s = 0;
    for (int k = 0; k < 8; ++k) s += lane[k];
    for (; i < r.n; ++i) s += nc == 3 ? gray_of(r.c[0][i], r.c[1][i], r.c[2][i]) : r.c[0][i];
    return s;
}

// Applies jitter ops [from, to) of p to a row. Saturation and hue need three channels.
void jitter_row(const Row& r, int nc, const ViewParams& p, int from, int to, float contrast_mean) {
    for (int k = from; k < to; ++k) {
        switch (p.ops[k]) {
            case kBrightness: brightness_row(r, nc, p.brightness); break;
            case kContrast: contrast_row(r, nc, p.contrast, contrast_mean); break;
            case kSaturation:
                if (nc == 3) saturation_row(r, p.saturation);
                break;
            case kHue:
                if (nc == 3) hue_row(r, p.hue);
                break;
        }
    }
}

// Per-thread buffers, grown on demand and reused across views.
struct Scratch {
    std::vector<float> img;   // [nc][oh][ow] working image
    std::vector<float> hrow;  // two horizontally resized source rows, [2][ic][ow]
    std::vector<float> pad;   // one padded row for the horizontal blur
    std::vector<float> tmp;   // one row of blur sums
    std::vector<LinearTap> xt;
    std::vector<float> weights;
    std::vector<const float*> rows;  // the vertical blur's source rows
};

template <class T>
T* grow(std::vector<T>& v, size_t n) {
    if (v.size() < n) v.resize(n);
    return v.data();
}

// Horizontal taps of source row `sy` into ic planes of ow floats.
template <int IC>
void resize_source_row(const uint8_t* src_row, const LinearTap* xt, int32_t ow, float* dst) {
    const float* lut = kLut.v;
    for (int32_t x = 0; x < ow; ++x) {
        const LinearTap t = xt[x];
        const uint8_t* a = src_row + int64_t(t.i0) * IC;
        const uint8_t* b = src_row + int64_t(t.i1) * IC;
        for (int c = 0; c < IC; ++c) dst[int64_t(c) * ow + x] = t.w0 * lut[a[c]] + t.w1 * lut[b[c]];
    }
}

// Pass 1's resize: fills the working image's `ic` first planes.
template <int IC>
void resize_into(const uint8_t* src, int32_t in_w, const ViewParams& p, int32_t oh, int32_t ow, Scratch& s,
                 float* img) {
    LinearTap* xt = grow(s.xt, size_t(ow));
    for (int32_t x = 0; x < ow; ++x) xt[x] = linear_tap(x, p.crop_w, ow, p.crop_left);
    float* h = grow(s.hrow, size_t(2) * IC * ow);
    int32_t cached[2] = {-1, -1};  // source row held by each half of h
    const int64_t plane = int64_t(oh) * ow, stride = int64_t(in_w) * IC;
    auto source_row = [&](int32_t sy) -> const float* {
        for (int k = 0; k < 2; ++k)
            if (cached[k] == sy) return h + int64_t(k) * IC * ow;
        // Rows only move down, so the lower-numbered one is never needed again.
        const int k = cached[0] < cached[1] ? 0 : 1;
        cached[k] = sy;
        float* d = h + int64_t(k) * IC * ow;
        resize_source_row<IC>(src + sy * stride, xt, ow, d);
        return d;
    };
    for (int32_t y = 0; y < oh; ++y) {
        const LinearTap ty = linear_tap(y, p.crop_h, oh, p.crop_top);
        const float* r0 = source_row(ty.i0);
        const float* r1 = source_row(ty.i1);
        for (int c = 0; c < IC; ++c) {
            const float* a = r0 + int64_t(c) * ow;
            const float* b = r1 + int64_t(c) * ow;
            float* o = img + c * plane + int64_t(y) * ow;
            for (int32_t x = 0; x < ow; ++x) o[x] = ty.w0 * a[x] + ty.w1 * b[x];
        }
    }
}

// Blur sums with GCC/Clang vector extensions: four 8-float accumulators in flight hide the FMA
// latency (the auto-vectoriser keeps one chain, or none when it cannot prove the rows disjoint).
// Every output still sums its taps in the order k = 0..2r starting from 0, lane by lane, in the
// vector blocks and in the scalar tail alike, and the GPU kernel uses the same order.
typedef float v8f __attribute__((vector_size(32)));
inline v8f load8(const float* p) {
    v8f v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline void store8(float* p, v8f v) { std::memcpy(p, &v, sizeof v); }

// out[i] = sum_k w[k] * src_k[i], where src_k = rows[k] (row_step 0) or base + k (a sliding
// window along one padded row: rows[0] = base, row_step 1).
template <bool Sliding>
void tap_sums(const float* const* rows, const float* base, int32_t taps, const float* w, int32_t n, float* out) {
    auto src = [&](int32_t k) { return Sliding ? base + k : rows[k]; };
    int32_t i = 0;
    for (; i + 32 <= n; i += 32) {
        v8f a0 = {}, a1 = {}, a2 = {}, a3 = {};
        for (int32_t k = 0; k < taps; ++k) {
            const float* s = src(k) + i;
            const float wk = w[k];
            a0 += wk * load8(s);
            a1 += wk * load8(s + 8);
            a2 += wk * load8(s + 16);
            a3 += wk * load8(s + 24);
        }
        store8(out + i, a0);
        store8(out + i + 8, a1);
        store8(out + i + 16, a2);
        store8(out + i + 24, a3);
    }
    for (; i + 8 <= n; i += 8) {
        v8f a = {};
        for (int32_t k = 0; k < taps; ++k) a += w[k] * load8(src(k) + i);
        store8(out + i, a);
    }
    for (; i < n; ++i) {
        float a = 0.f;
        for (int32_t k = 0; k < taps; ++k) a += w[k] * src(k)[i];
        out[i] = a;
    }
}

// row[i] = sum_k w[k] * row[reflect(i - r + k)], in place (through the padded copy `pad`, and
// `tmp` for the sums).
void blur_row_inplace(float* row, int32_t n, const float* w, int32_t r, float* pad, float* tmp) {
    std::memcpy(pad + r, row, sizeof(float) * size_t(n));
    for (int32_t j = 0; j < r; ++j) {
        pad[j] = row[reflect_index(j - r, n)];
        pad[n + r + j] = row[reflect_index(n + j, n)];
    }
    tap_sums<true>(nullptr, pad, 2 * r + 1, w, n, tmp);
    std::memcpy(row, tmp, sizeof(float) * size_t(n));
}

void write_row(const float* v, int32_t n, bool flip, float mean, float std, float* out) {
    if (flip) {
        for (int32_t i = 0; i < n; ++i) out[n - 1 - i] = (v[i] - mean) / std;
    } else {
        for (int32_t i = 0; i < n; ++i) out[i] = (v[i] - mean) / std;
    }
}

}  // namespace

void check_params(const ViewParams& p, int32_t in_h, int32_t in_w) {
    HPT_CHECK(p.crop_h > 0 && p.crop_w > 0 && p.crop_top >= 0 && p.crop_left >= 0 &&
                  p.crop_top + p.crop_h <= in_h && p.crop_left + p.crop_w <= in_w,
              "augment: crop box (", p.crop_top, ", ", p.crop_left, ", ", p.crop_h, ", ", p.crop_w,
              ") outside the ", in_h, "x", in_w, " image");
    HPT_CHECK(p.n_ops >= 0 && p.n_ops <= 4 && p.blur_radius >= 0 && p.blur_radius <= kMaxBlurRadius &&
                  (p.blur_radius == 0 || p.blur_sigma > 0),
              "augment: invalid view parameters (", p.n_ops, " jitter ops, blur radius ", p.blur_radius,
              ", sigma ", p.blur_sigma, ")");
    for (int k = 0; k < p.n_ops; ++k) HPT_CHECK(p.ops[k] <= kHue, "augment: unknown jitter op ", int(p.ops[k]));
}

void augment_view_cpu(const uint8_t* src, int32_t in_h, int32_t in_w, int32_t in_c, const ViewParams& p,
                      const AugmentConfig& cfg, float* out) {
    HPT_CHECK(in_c == 1 || in_c == 3, "augment: images must have 1 or 3 channels, got ", in_c);
    check_params(p, in_h, in_w);
    static thread_local Scratch s;
    const int32_t oh = cfg.out_h, ow = cfg.out_w;
    const int nc = int(view_channels(cfg, in_c));
    const int64_t plane = int64_t(oh) * ow;
    float* img = grow(s.img, size_t(nc) * plane);

    if (in_c == 3) {
        resize_into<3>(src, in_w, p, oh, ow, s, img);
    } else {
        resize_into<1>(src, in_w, p, oh, ow, s, img);
        for (int c = 1; c < nc; ++c) std::memcpy(img + c * plane, img, sizeof(float) * size_t(plane));
    }
    auto row = [&](int32_t y) {
        Row r{{img + int64_t(y) * ow, img + (nc > 1 ? plane : 0) + int64_t(y) * ow,
               img + (nc > 2 ? 2 * plane : 0) + int64_t(y) * ow},
              ow};
        return r;
    };

    int kc = p.n_ops;  // position of contrast among the ops
    for (int k = 0; k < p.n_ops; ++k)
        if (p.ops[k] == kContrast) kc = k;
    const bool has_contrast = kc < p.n_ops;
    const bool gray = p.gray && nc == 3;
    const bool blur = p.blur_radius > 0;
    const int32_t rad = p.blur_radius;
    float* w = nullptr;
    float* pad = nullptr;
    float* tmp = nullptr;
    if (blur) {
        w = grow(s.weights, size_t(2 * rad + 1));
        gaussian_weights(p.blur_sigma, rad, w);
        pad = grow(s.pad, size_t(ow + 2 * rad));
        tmp = grow(s.tmp, size_t(ow));
    }

    // What happens to a row once its colour is final.
    auto finish_row = [&](int32_t y, const Row& r) {
        if (gray) gray_row(r);
        if (blur) {
            for (int c = 0; c < nc; ++c) blur_row_inplace(r.c[c], ow, w, rad, pad, tmp);
        } else {
            for (int c = 0; c < nc; ++c)
                write_row(r.c[c], ow, p.flip, cfg.mean[c], cfg.std[c], out + c * plane + int64_t(y) * ow);
        }
    };

    double gray_sum = 0;
    for (int32_t y = 0; y < oh; ++y) {
        const Row r = row(y);
        jitter_row(r, nc, p, 0, kc, 0.f);
        if (has_contrast) {
            gray_sum += gray_sum_row(r, nc);
        } else {
            finish_row(y, r);
        }
    }
    if (has_contrast) {
        const float mean = float(gray_sum / double(plane));
        for (int32_t y = 0; y < oh; ++y) {
            const Row r = row(y);
            jitter_row(r, nc, p, kc, p.n_ops, mean);
            finish_row(y, r);
        }
    }
    if (blur) {
        const float** rows = grow(s.rows, size_t(2 * rad + 1));
        for (int c = 0; c < nc; ++c) {
            const float* pl = img + c * plane;
            for (int32_t y = 0; y < oh; ++y) {
                for (int32_t k = 0; k <= 2 * rad; ++k) rows[k] = pl + int64_t(reflect_index(y - rad + k, oh)) * ow;
                tap_sums<false>(rows, nullptr, 2 * rad + 1, w, ow, tmp);
                write_row(tmp, ow, p.flip, cfg.mean[c], cfg.std[c], out + c * plane + int64_t(y) * ow);
            }
        }
    }
}

// ---------------------------------------------------------------- batches

namespace {

struct BatchShape {
    int32_t n, h, w, c;
};

BatchShape check_batch(const Tensor& images, const AugmentConfig& cfg, const char* what) {
    HPT_CHECK(images.defined() && images.dim() == 4 && images.dtype() == DType::u8, what,
              ": expected u8 images [N, H, W, C], got ", images.defined() ? images.str(0) : "undefined");
    HPT_CHECK(images.size(3) == 1 || images.size(3) == 3, what, ": images must have 1 or 3 channels, got ",
              images.size(3));
    check_config(cfg);
    return {int32_t(images.size(0)), int32_t(images.size(1)), int32_t(images.size(2)), int32_t(images.size(3))};
}

// f(t) for t in [0, n) on `threads` OpenMP threads (0: num_threads()), handed out a few at a time
// because views differ in cost (blur or not, contrast or not).
template <class F>
void for_each_view(int64_t n, int threads, const F& f) {
    const int nt = threads > 0 ? threads : num_threads();
#ifdef _OPENMP
    if (nt > 1 && n > 1 && !omp_in_parallel()) {
#pragma omp parallel for num_threads(nt) schedule(dynamic, 2)
        for (int64_t t = 0; t < n; ++t) f(t);
        return;
    }
#endif
    for (int64_t t = 0; t < n; ++t) f(t);
}

#ifdef HPT_WITH_CUDA
void run_cuda(const Tensor& images, const std::vector<int64_t>* samples, const std::vector<ViewParams>* params,
              const AugmentConfig& cfg, uint64_t seed, int64_t epoch, const Tensor& v1, const Tensor& v2);
#endif

}  // namespace

std::pair<Tensor, Tensor> augment_batch(const Tensor& images, const std::vector<int64_t>& samples,
                                        const AugmentConfig& cfg, uint64_t seed, int64_t epoch) {
    const BatchShape b = check_batch(images, cfg, "augment_batch");
    const Shape shape = {b.n, view_channels(cfg, b.c), cfg.out_h, cfg.out_w};
    Tensor v1 = empty(shape, DType::f32, images.device()), v2 = empty(shape, DType::f32, images.device());
    augment_batch_into(images, samples, cfg, seed, epoch, v1, v2);
    return {v1, v2};
}

void augment_batch_into(const Tensor& images, const std::vector<int64_t>& samples, const AugmentConfig& cfg,
                        uint64_t seed, int64_t epoch, const Tensor& view1, const Tensor& view2, int threads) {
    const BatchShape b = check_batch(images, cfg, "augment_batch");
    HPT_CHECK(int64_t(samples.size()) == b.n, "augment_batch: ", samples.size(), " sample indices for ", b.n,
              " images");
    const int64_t nc = view_channels(cfg, b.c);
    const Shape shape = {b.n, nc, cfg.out_h, cfg.out_w};
    for (const Tensor* v : {&view1, &view2})
        HPT_CHECK(v->defined() && v->shape() == shape && v->dtype() == DType::f32 && v->is_contiguous() &&
                      v->device() == images.device(),
                  "augment_batch: views must be contiguous f32 ", shape_str(shape), " on ", images.device().str());
    if (images.device().is_cuda()) {
#ifdef HPT_WITH_CUDA
        run_cuda(images, &samples, nullptr, cfg, seed, epoch, view1, view2);
        return;
#else
        HPT_THROW("augment_batch: CUDA images in a build without CUDA");
#endif
    }
    const Tensor src = images.contiguous();
    const uint8_t* in = src.data<uint8_t>();
    float* o[2] = {view1.data<float>(), view2.data<float>()};
    const int64_t in_size = int64_t(b.h) * b.w * b.c, out_size = nc * cfg.out_h * cfg.out_w;
    for_each_view(2 * int64_t(b.n), threads, [&](int64_t t) {
        const int64_t i = t >> 1;
        const int view = int(t & 1);
        const ViewParams p = draw_view_params(seed, epoch, samples[size_t(i)], view, cfg, b.h, b.w);
        augment_view_cpu(in + i * in_size, b.h, b.w, b.c, p, cfg, o[view] + i * out_size);
    });
}

Tensor augment_view(const Tensor& images, const std::vector<int64_t>& samples, int view, const AugmentConfig& cfg,
                    uint64_t seed, int64_t epoch, int threads) {
    const BatchShape b = check_batch(images, cfg, "augment_view");
    HPT_CHECK(view == 0 || view == 1, "augment_view: view ", view, " is not 0 or 1");
    HPT_CHECK(int64_t(samples.size()) == b.n, "augment_view: ", samples.size(), " sample indices for ", b.n, " images");
    std::vector<ViewParams> params(samples.size());
    for (size_t i = 0; i < samples.size(); ++i) params[i] = draw_view_params(seed, epoch, samples[i], view, cfg, b.h, b.w);
    return apply_views(images, params, cfg, threads);
}

Tensor apply_views(const Tensor& images, const std::vector<ViewParams>& params, const AugmentConfig& cfg,
                   int threads) {
    const BatchShape b = check_batch(images, cfg, "apply_views");
    HPT_CHECK(int64_t(params.size()) == b.n, "apply_views: ", params.size(), " parameter sets for ", b.n, " images");
    for (const ViewParams& p : params) check_params(p, b.h, b.w);  // here: the worker threads must not throw
    if (images.device().is_cuda()) {
#ifdef HPT_WITH_CUDA
        const Shape shape = {b.n, view_channels(cfg, b.c), cfg.out_h, cfg.out_w};
        Tensor v = empty(shape, DType::f32, images.device());
        run_cuda(images, nullptr, &params, cfg, 0, 0, v, Tensor());
        return v;
#else
        HPT_THROW("apply_views: CUDA images in a build without CUDA");
#endif
    }
    const Tensor src = images.contiguous();
    const int64_t nc = view_channels(cfg, b.c);
    Tensor v = empty({b.n, nc, cfg.out_h, cfg.out_w}, DType::f32);
    const uint8_t* in = src.data<uint8_t>();
    float* o = v.data<float>();
    const int64_t in_size = int64_t(b.h) * b.w * b.c, out_size = nc * cfg.out_h * cfg.out_w;
    for_each_view(b.n, threads, [&](int64_t i) {
        augment_view_cpu(in + i * in_size, b.h, b.w, b.c, params[size_t(i)], cfg, o + i * out_size);
    });
    return v;
}

// ---------------------------------------------------------------- the CUDA entry

#ifdef HPT_WITH_CUDA
namespace {

void run_cuda(const Tensor& images, const std::vector<int64_t>* samples, const std::vector<ViewParams>* params,
              const AugmentConfig& cfg, uint64_t seed, int64_t epoch, const Tensor& v1, const Tensor& v2) {
    const BatchShape b = check_batch(images, cfg, "augment (cuda)");
    const Tensor src = images.contiguous();
    const Device dev = images.device();
    const cuda::DeviceGuard guard(dev.index);
    const int n_views = samples ? 2 : 1;
    const int64_t nc = view_channels(cfg, b.c);
    const Shape shape = {b.n, nc, cfg.out_h, cfg.out_w};
    Tensor scratch = empty({int64_t(n_views) * shape_numel(shape)}, DType::f32, dev);
    Tensor params_out = empty({int64_t(n_views) * b.n * int64_t(sizeof(ViewParams))}, DType::u8, dev);
    Tensor tile_sums = empty({augment_cuda_tile_sums(b.n, n_views, cfg.out_h, cfg.out_w)}, DType::f64, dev);
    // The per-image arrays (sample indices or explicit parameters) travel through the engine's copy.
    Tensor aux;
    int32_t max_radius = max_blur_radius(cfg);
    if (samples) {
        aux = from_vector(*samples, {b.n}).to(dev);
    } else {
        Tensor h = empty({int64_t(params->size() * sizeof(ViewParams))}, DType::u8);
        std::memcpy(h.data_ptr(), params->data(), params->size() * sizeof(ViewParams));
        aux = h.to(dev);
        max_radius = 0;
        for (const ViewParams& p : *params) max_radius = std::max(max_radius, p.blur_radius);
    }
    augment_views_cuda(src.data<uint8_t>(), b.n, b.h, b.w, b.c, samples ? aux.data<int64_t>() : nullptr,
                       samples ? nullptr : static_cast<const ViewParams*>(aux.data_ptr()), cfg, seed, epoch,
                       n_views, max_radius, v1.data<float>(), n_views == 2 ? v2.data<float>() : nullptr,
                       scratch.data<float>(), static_cast<ViewParams*>(params_out.data_ptr()),
                       tile_sums.data<double>(), cuda::current_stream(dev.index));
    // No wait: the kernels run in order on the device's current stream, after the copies that
    // made their inputs, and the allocator reuses the released scratch only for later work on
    // that same stream.
}

}  // namespace
#endif

}  // namespace hpt::ssl
