#include "engine/data/prepare.h"

#include <cstdint>
#include <cmath>

#include "engine/core/error.h"
#include "kernels/cpu/parallel.h"

namespace hpt::data {

InputSpec spec_for(const std::vector<double>& mean, const std::vector<double>& std, int64_t channels, int64_t size) {
    HPT_CHECK(!mean.empty() && mean.size() == std.size(), "spec_for: mean/std of ", mean.size(), " and ", std.size(),
              " channels");
    for (size_t c = 0; c < mean.size(); ++c)  // else every normalised value is inf or NaN
        HPT_CHECK(std::isfinite(mean[c]) && std::isfinite(std[c]) && std[c] >= 1e-6, "normalisation of channel ", c,
                  ": mean ", mean[c], ", std ", std[c], " (a mean must be finite, a std finite and at least 1e-6)");
    InputSpec s;
    s.size = size;
    s.channels = channels ? channels : int64_t(mean.size());
    if (int64_t(mean.size()) == s.channels) {
        s.mean = mean, s.std = std;
    } else if (mean.size() == 1) {  // gray data, RGB model: replicated channels share the statistics
        s.mean.assign(size_t(s.channels), mean[0]);
        s.std.assign(size_t(s.channels), std[0]);
    } else {  // RGB data, gray model: statistics of the luma image, approximated from the channels
        const double w[3] = {0.299, 0.587, 0.114};
        double m = 0, v = 0;
        for (int c = 0; c < 3; ++c) m += w[c] * mean[size_t(c)], v += w[c] * std[size_t(c)];
        s.mean = {m};
        s.std = {v};
    }
    for (double d : s.std) HPT_CHECK(d > 0, "spec_for: a channel has zero standard deviation (constant images?)");
    return s;
}

Tensor prepare_images(const Tensor& images, int64_t begin, int64_t end, const InputSpec& spec) {
    HPT_CHECK(images.dtype() == DType::u8 && images.dim() == 4 && images.device().is_cpu() && images.is_contiguous(),
              "prepare_images: expects contiguous u8 [N, H, W, C] on the CPU");
    HPT_CHECK(begin >= 0 && begin <= end && end <= images.size(0), "prepare_images: rows [", begin, ", ", end,
              ") outside ", images.size(0));
    const int64_t H = images.size(1), W = images.size(2), C = images.size(3);
    const int64_t size = spec.size ? spec.size : H;
    HPT_CHECK(spec.size || H == W, "prepare_images: ", H, "x", W, " images need a square output size");
    const int64_t OC = spec.channels ? spec.channels : C;
    HPT_CHECK((C == 1 || C == 3) && (OC == 1 || OC == 3), "prepare_images: ", C, " -> ", OC, " channels");
    HPT_CHECK(int64_t(spec.mean.size()) == OC && int64_t(spec.std.size()) == OC, "prepare_images: mean/std for ",
              spec.mean.size(), " channels, output has ", OC);
    const int64_t n = end - begin;
    Tensor out = empty({n, OC, size, size});
    const uint8_t* src = images.data<uint8_t>();
    float* dst = out.data<float>();
    const double sy = double(H) / double(size), sx = double(W) / double(size);
    parallel_for(n, 1, [&](int64_t b, int64_t e) {
        std::vector<float> pix(static_cast<size_t>(C));
        for (int64_t i = b; i < e; ++i) {
            const uint8_t* img = src + (begin + i) * H * W * C;
            for (int64_t y = 0; y < size; ++y) {
                const double fy = std::max(0.0, (double(y) + 0.5) * sy - 0.5);
                const int64_t y0 = std::min<int64_t>(int64_t(fy), H - 1), y1 = std::min<int64_t>(y0 + 1, H - 1);
                const double wy = fy - double(y0);
                for (int64_t x = 0; x < size; ++x) {
                    const double fx = std::max(0.0, (double(x) + 0.5) * sx - 0.5);
                    const int64_t x0 = std::min<int64_t>(int64_t(fx), W - 1), x1 = std::min<int64_t>(x0 + 1, W - 1);
                    const double wx = fx - double(x0);
                    for (int64_t c = 0; c < C; ++c) {
                        auto at = [&](int64_t yy, int64_t xx) { return double(img[(yy * W + xx) * C + c]); };
                        const double v = (1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x1)) +
                                         wy * ((1 - wx) * at(y1, x0) + wx * at(y1, x1));
                        pix[size_t(c)] = float(v / 255.0);
                    }
                    for (int64_t oc = 0; oc < OC; ++oc) {
                        float v;
                        if (OC == C) {
                            v = pix[size_t(oc)];
                        } else if (C == 1) {
                            v = pix[0];
                        } else {
                            v = 0.299f * pix[0] + 0.587f * pix[1] + 0.114f * pix[2];
                        }
                        dst[((i * OC + oc) * size + y) * size + x] =
                            float((double(v) - spec.mean[size_t(oc)]) / spec.std[size_t(oc)]);
                    }
                }
            }
        }
    });
    return out;
}

}  // namespace hpt::data
