// Statistics of the augmentation's random draws (draw_view_params) over many samples, against the
// distributions the policy defines. Bounds are 5 standard errors (or a fixed 0.01 on CDFs, which is
// 4 standard errors at 40,000 draws), so a correct sampler fails with negligible probability, and
// the draws are seeded, so the test is deterministic anyway.
#include <cstdint>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "ssl/augment.h"

using namespace hpt::ssl;

namespace {

constexpr int64_t kDraws = 40000;
constexpr int32_t kSide = 1024;  // a large square input: crop sizes are nearly continuous

std::vector<ViewParams> draws(const AugmentConfig& cfg, int32_t h = kSide, int32_t w = kSide, uint64_t seed = 2024) {
    std::vector<ViewParams> v;
    v.reserve(size_t(kDraws));
    for (int64_t s = 0; s < kDraws; ++s) v.push_back(draw_view_params(seed, 7, s, int(s & 1), cfg, h, w));
    return v;
}

// Integral of f over [a, b] by Simpson's rule.
double integrate(const std::function<double(double)>& f, double a, double b, int n = 20000) {
    const double h = (b - a) / n;
    double s = f(a) + f(b);
    for (int i = 1; i < n; ++i) s += f(a + i * h) * (i % 2 ? 4 : 2);
    return s * h / 3;
}

void check_proportion(int64_t hits, int64_t n, double p, const char* what) {
    const double phat = double(hits) / double(n), se = std::sqrt(p * (1 - p) / double(n));
    INFO(what << ": " << phat << " vs " << p << " (se " << se << ")");
    CHECK(std::fabs(phat - p) <= 5 * se + 1e-12);
}

}  // namespace

TEST_CASE("crop area and aspect ratio follow RandomResizedCrop's distribution", "[ssl][augment][draws]") {
    const AugmentConfig cfg = augment_policy("full", 32);
    const std::vector<ViewParams> v = draws(cfg);
    // An attempt draws s ~ U(0.2, 1) and t = log(ratio) ~ U(-L, L), L = log(4/3); on a square
    // image it is kept when s e^|t| <= 1, i.e. |t| <= -log s. The kept s has density proportional
    // to min(1, -log(s) / L); the kept t proportional to e^-|t| - 0.2. (All ten attempts fail with
    // probability 0.164^10, so the fallback never shows here.)
    const double L = std::log(4.0 / 3.0);
    auto ps = [&](double s) { return std::min(1.0, -std::log(s) / L); };
    auto pt = [&](double t) { return std::exp(-std::fabs(t)) - 0.2; };
    const double zs = integrate(ps, 0.2, 1.0), zt = integrate(pt, -L, L);
    const double mean_s = integrate([&](double s) { return s * ps(s); }, 0.2, 1.0) / zs;
    const double mean_abs_t = 2 * integrate([&](double t) { return t * pt(t); }, 0, L) / zt;

    std::vector<double> area, logr;
    for (const ViewParams& p : v) {
        REQUIRE(p.crop_top >= 0);
        REQUIRE(p.crop_left >= 0);
        REQUIRE(p.crop_top + p.crop_h <= kSide);
        REQUIRE(p.crop_left + p.crop_w <= kSide);
        area.push_back(double(p.crop_h) * p.crop_w / (double(kSide) * kSide));
        logr.push_back(std::log(double(p.crop_w) / p.crop_h));
    }
    double m = 0, ma = 0, mt = 0;
    for (size_t i = 0; i < area.size(); ++i) {
        m += area[i];
        ma += std::fabs(logr[i]);
        mt += logr[i];
    }
    m /= kDraws;
    ma /= kDraws;
    mt /= kDraws;
    INFO("area mean " << m << " vs " << mean_s << "; |log ratio| mean " << ma << " vs " << mean_abs_t);
    CHECK(std::fabs(m - mean_s) < 5 * 0.23 / std::sqrt(double(kDraws)));
    CHECK(std::fabs(mt) < 5 * 0.17 / std::sqrt(double(kDraws)));
    CHECK(std::fabs(ma - mean_abs_t) < 5 * 0.09 / std::sqrt(double(kDraws)));
    CHECK(*std::min_element(area.begin(), area.end()) > 0.199);
    CHECK(*std::max_element(area.begin(), area.end()) < 1.001);
    CHECK(*std::max_element(logr.begin(), logr.end()) < L + 0.003);
    CHECK(*std::min_element(logr.begin(), logr.end()) > -L - 0.003);

    // Empirical CDFs against the theoretical ones at a few quantiles.
    for (double q : {0.25, 0.4, 0.55, 0.7, 0.8, 0.9, 0.95}) {
        const double F = integrate(ps, 0.2, q) / zs;
        const double Fhat = double(std::count_if(area.begin(), area.end(), [&](double a) { return a <= q; })) / kDraws;
        INFO("area CDF at " << q << ": " << Fhat << " vs " << F);
        CHECK(std::fabs(Fhat - F) < 0.01);
    }
    for (double q : {-0.2, -0.1, 0.0, 0.05, 0.15, 0.25}) {
        const double F = integrate(pt, -L, q) / zt;
        const double Fhat = double(std::count_if(logr.begin(), logr.end(), [&](double t) { return t <= q; })) / kDraws;
        INFO("log-ratio CDF at " << q << ": " << Fhat << " vs " << F);
        CHECK(std::fabs(Fhat - F) < 0.01);
    }

    // Crop positions are uniform over the valid range: the box centre averages the image centre.
    double cy = 0, cx = 0;
    for (const ViewParams& p : v) {
        cy += (p.crop_top + 0.5 * p.crop_h) / kSide;
        cx += (p.crop_left + 0.5 * p.crop_w) / kSide;
    }
    CHECK(std::fabs(cy / kDraws - 0.5) < 0.005);
    CHECK(std::fabs(cx / kDraws - 0.5) < 0.005);
}

TEST_CASE("the crop falls back to torchvision's centre crop", "[ssl][augment][draws]") {
    AugmentConfig cfg = augment_policy("full", 32);
    cfg.scale_min = 1.5;  // no attempt can fit
    cfg.scale_max = 2.0;
    const ViewParams a = draw_view_params(1, 0, 0, 0, cfg, 28, 36);  // ratio 1.29: whole image
    CHECK((a.crop_top == 0 && a.crop_left == 0 && a.crop_h == 28 && a.crop_w == 36));
    const ViewParams b = draw_view_params(1, 0, 0, 0, cfg, 10, 40);  // ratio 4: widest allowed, centred
    CHECK((b.crop_h == 10 && b.crop_w == 13 && b.crop_top == 0 && b.crop_left == 13));
    const ViewParams c = draw_view_params(1, 0, 0, 0, cfg, 40, 10);  // ratio 1/4: tallest allowed
    CHECK((c.crop_w == 10 && c.crop_h == 13 && c.crop_left == 0 && c.crop_top == 13));
    cfg.crop = false;
    const ViewParams d = draw_view_params(1, 0, 0, 0, cfg, 40, 10);
    CHECK((d.crop_top == 0 && d.crop_left == 0 && d.crop_h == 40 && d.crop_w == 10));
    // Small images: every box stays inside.
    cfg = augment_policy("full", 32);
    for (int64_t s = 0; s < 2000; ++s) {
        const ViewParams p = draw_view_params(3, 1, s, 1, cfg, 5, 7);
        REQUIRE((p.crop_h >= 1 && p.crop_w >= 1 && p.crop_top + p.crop_h <= 5 && p.crop_left + p.crop_w <= 7));
    }
}

TEST_CASE("application probabilities, jitter factors and order, blur sigma", "[ssl][augment][draws]") {
    const AugmentConfig cfg = augment_policy("full", 32);
    const std::vector<ViewParams> v = draws(cfg, 28, 28);
    int64_t jitter = 0, gray = 0, blur = 0, flip = 0;
    double sb = 0, sc = 0, ss = 0, sh = 0, ssig = 0;
    float lo[4] = {9, 9, 9, 9}, hi[4] = {-9, -9, -9, -9};
    float sig_lo = 9, sig_hi = 0;
    std::map<int, int64_t> orders;
    for (const ViewParams& p : v) {
        gray += p.gray;
        flip += p.flip;
        if (p.n_ops > 0) {
            REQUIRE(p.n_ops == 4);
            ++jitter;
            const float f[4] = {p.brightness, p.contrast, p.saturation, p.hue};
            for (int k = 0; k < 4; ++k) {
                lo[k] = std::min(lo[k], f[k]);
                hi[k] = std::max(hi[k], f[k]);
            }
            sb += p.brightness;
            sc += p.contrast;
            ss += p.saturation;
            sh += p.hue;
            int code = 0, seen = 0;
            for (int k = 0; k < 4; ++k) {
                code = code * 4 + p.ops[k];
                seen |= 1 << p.ops[k];
            }
            REQUIRE(seen == 15);
            ++orders[code];
        } else {
            REQUIRE((p.brightness == 1.f && p.contrast == 1.f && p.saturation == 1.f && p.hue == 0.f));
        }
        if (p.blur_radius > 0) {
            ++blur;
            ssig += p.blur_sigma;
            sig_lo = std::min(sig_lo, p.blur_sigma);
            sig_hi = std::max(sig_hi, p.blur_sigma);
            REQUIRE(p.blur_radius == int32_t(std::ceil(3.0 * double(p.blur_sigma))));
        } else {
            REQUIRE(p.blur_sigma == 0.f);
        }
    }
    check_proportion(jitter, kDraws, 0.8, "jitter");
    check_proportion(gray, kDraws, 0.2, "grayscale");
    check_proportion(blur, kDraws, 0.5, "blur");
    check_proportion(flip, kDraws, 0.5, "flip");

    // Factors: U(0.6, 1.4) for brightness, contrast, saturation; U(-0.4, 0.4) for hue. Means within
    // 5 standard errors (sd of U over a width of 0.8 is 0.23), extremes close to the ends.
    const double se = 5 * 0.8 / std::sqrt(12.0 * double(jitter));
    CHECK(std::fabs(sb / jitter - 1) < se);
    CHECK(std::fabs(sc / jitter - 1) < se);
    CHECK(std::fabs(ss / jitter - 1) < se);
    CHECK(std::fabs(sh / jitter) < se);
    for (int k = 0; k < 3; ++k) {
        CHECK(lo[k] >= 0.6f);
        CHECK(lo[k] < 0.601f);
        CHECK(hi[k] <= 1.4f);
        CHECK(hi[k] > 1.399f);
    }
    CHECK((lo[3] >= -0.4f && lo[3] < -0.399f && hi[3] <= 0.4f && hi[3] > 0.399f));

    // All 24 orders, each with probability 1/24.
    CHECK(orders.size() == 24);
    for (const auto& [code, count] : orders) check_proportion(count, jitter, 1.0 / 24, "one jitter order");

    // Blur sigma U(0.1, 2.0): mean 1.05, sd 0.55.
    CHECK(std::fabs(ssig / blur - 1.05) < 5 * 0.55 / std::sqrt(double(blur)));
    CHECK((sig_lo >= 0.1f && sig_lo < 0.101f && sig_hi <= 2.0f && sig_hi > 1.999f));
}

TEST_CASE("every probability and parameter is configurable", "[ssl][augment][draws]") {
    AugmentConfig cfg = augment_policy("full", 32);
    cfg.hue = 0.1;  // MoCo v2's value
    cfg.brightness = 0;  // off: not in the order, factor 1
    cfg.jitter_p = 1;
    cfg.gray_p = 0;
    cfg.blur_p = 1;
    cfg.blur_sigma_min = 0.5;
    cfg.blur_sigma_max = 1.0;
    cfg.blur_radius_sigmas = 2;
    cfg.flip_p = 1;
    cfg.scale_min = 0.9;
    for (int64_t s = 0; s < 3000; ++s) {
        const ViewParams p = draw_view_params(8, 2, s, 0, cfg, 64, 64);
        REQUIRE(p.n_ops == 3);
        for (int k = 0; k < 3; ++k) REQUIRE(p.ops[k] != kBrightness);
        REQUIRE(p.brightness == 1.f);
        REQUIRE(std::fabs(p.hue) <= 0.1f);
        REQUIRE(p.gray == 0);
        REQUIRE((p.blur_sigma >= 0.5f && p.blur_sigma <= 1.0f));
        REQUIRE(p.blur_radius == int32_t(std::ceil(2.0 * double(p.blur_sigma))));
        REQUIRE(p.flip == 1);
        REQUIRE(double(p.crop_h) * p.crop_w >= 0.85 * 64 * 64);
    }
    CHECK(max_blur_radius(cfg) == 2);
    CHECK(max_blur_radius(augment_policy("full", 32)) == 6);
    CHECK(max_blur_radius(augment_policy("crop_only", 32)) == 0);
}

TEST_CASE("the crop's exp is the library's within 2 ulp", "[ssl][augment][draws]") {
    // aug_exp exists so that the CPU and the GPU round the aspect ratio identically; it must
    // still be exp.
    double worst = 0;
    for (int i = -4000; i <= 4000; ++i) {
        const double x = i * 0.0017 + 1e-4 * (i % 7);
        const double a = aug_exp(x), e = std::exp(x);
        worst = std::max(worst, std::fabs(a - e) / (std::nextafter(e, INFINITY) - e));
    }
    CHECK(worst <= 2.0);
    CHECK(aug_exp(0.0) == 1.0);
}
