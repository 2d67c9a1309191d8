// Not thread-safe (shared scratch): the CPU conv kernels are called from one thread at a time,
// like the oneDNN path, whose plans serialise on a mutex.
//
// conv2d on the CPU as GEMMs over an im2col matrix (f32, groups = 1), for the shapes where it beats
// oneDNN's direct convolution: small output maps with many channels (ResNet's last stages), where
// the [N*OH*OW, C*kh*kw] x [C*kh*kw, O] product runs near the GEMM peak.
//   forward:      Y' = col W^T              ([N*OH*OW, O], then transposed to NCHW)
//   input grad:   dcol = dY' W, then col2im (a scatter-add, split over samples: deterministic)
//   weight grad:  dW = dY'^T col            (col recomputed rather than kept from the forward)
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"

namespace hpt {

namespace {

struct G {
    int64_t N, C, H, W, O, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw;
    int64_t rows() const { return N * OH * OW; }
    int64_t cols() const { return C * KH * KW; }
};

G geom_of(const Tensor& x, const Tensor& w, int64_t oh, int64_t ow, const Conv2dAttrs& p) {
    return {x.size(0), x.size(1), x.size(2), x.size(3), w.size(0), w.size(2), w.size(3), oh, ow,
            p.stride[0], p.stride[1], p.padding[0], p.padding[1], p.dilation[0], p.dilation[1]};
}

// col[(n, oh, ow), (c, u, v)] = x[n, c, oh*sh - ph + u*dh, ow*sw - pw + v*dw] (0 outside).
void im2col(const G& g, const float* x, float* col) {
    parallel_for(g.N * g.OH, 1, [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
            const int64_t n = r / g.OH, oh = r % g.OH;
            for (int64_t ow = 0; ow < g.OW; ++ow) {
                float* out = col + ((n * g.OH + oh) * g.OW + ow) * g.cols();
                for (int64_t c = 0; c < g.C; ++c) {
                    const float* xp = x + (n * g.C + c) * g.H * g.W;
                    for (int64_t u = 0; u < g.KH; ++u) {
                        const int64_t h = oh * g.sh - g.ph + u * g.dh;
                        for (int64_t v = 0; v < g.KW; ++v) {
                            const int64_t q = ow * g.sw - g.pw + v * g.dw;
                            *out++ = (h >= 0 && h < g.H && q >= 0 && q < g.W) ? xp[h * g.W + q] : 0.f;
                        }
                    }
                }
            }
        }
    });
}

// dx = sum over windows of dcol (the adjoint of im2col), one sample per task.
void col2im(const G& g, const float* dcol, float* dx) {
    parallel_for(g.N, 1, [&](int64_t b, int64_t e) {
        for (int64_t n = b; n < e; ++n) {
            float* xs = dx + n * g.C * g.H * g.W;
            std::memset(xs, 0, size_t(g.C * g.H * g.W) * sizeof(float));
            for (int64_t oh = 0; oh < g.OH; ++oh) {
                for (int64_t ow = 0; ow < g.OW; ++ow) {
                    const float* in = dcol + ((n * g.OH + oh) * g.OW + ow) * g.cols();
                    for (int64_t c = 0; c < g.C; ++c) {
                        float* xp = xs + c * g.H * g.W;
                        for (int64_t u = 0; u < g.KH; ++u) {
                            const int64_t h = oh * g.sh - g.ph + u * g.dh;
                            for (int64_t v = 0; v < g.KW; ++v, ++in) {
                                const int64_t q = ow * g.sw - g.pw + v * g.dw;
                                if (h >= 0 && h < g.H && q >= 0 && q < g.W) xp[h * g.W + q] += *in;
                            }
                        }
                    }
                }
            }
        }
    });
}

// [N, P, O] <-> [N, O, P] with P = OH*OW.
void to_nchw(const G& g, const float* src, float* dst) {
    const int64_t P = g.OH * g.OW;
    parallel_for(g.N, 1, [&](int64_t b, int64_t e) {
        for (int64_t n = b; n < e; ++n)
            for (int64_t o = 0; o < g.O; ++o)
                for (int64_t p = 0; p < P; ++p) dst[(n * g.O + o) * P + p] = src[(n * P + p) * g.O + o];
    });
}
void from_nchw(const G& g, const float* src, float* dst) {
    const int64_t P = g.OH * g.OW;
    parallel_for(g.N, 1, [&](int64_t b, int64_t e) {
        for (int64_t n = b; n < e; ++n)
            for (int64_t p = 0; p < P; ++p)
                for (int64_t o = 0; o < g.O; ++o) dst[(n * P + p) * g.O + o] = src[(n * g.O + o) * P + p];
    });
}

// Grow-only scratch, reused across calls: a fresh 20-150 MB buffer per call would pay for
// zero-filling and first-touch page faults every time. One per role (a call needs two at once).
float* scratch(int role, int64_t n) {
    static std::vector<float> buf[3];
    std::vector<float>& b = buf[role];
    if (int64_t(b.size()) < n) b.resize(size_t(n));
    return b.data();
}

}  // namespace

bool conv2d_im2col_fits(const Tensor& x, const Tensor& w, int64_t oh, int64_t ow, const Conv2dAttrs& p) {
    const int64_t bytes = x.size(0) * oh * ow * w.size(1) * w.size(2) * w.size(3) * 4;
    return p.groups == 1 && x.dtype() == DType::f32 && bytes <= (int64_t(256) << 20);
}

void conv2d_forward_im2col(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y, const Conv2dAttrs& p) {
    const G g = geom_of(x, w, y.size(2), y.size(3), p);
    float* col = scratch(0, g.rows() * g.cols());
    float* yp = scratch(1, g.rows() * g.O);
    im2col(g, x.data<float>(), col);
    float beta = 0.f;
    if (b.defined()) {
        const float* pb = b.data<float>();
        for (int64_t r = 0; r < g.rows(); ++r) std::memcpy(yp + r * g.O, pb, size_t(g.O) * sizeof(float));
        beta = 1.f;
    }
    cpu_gemm(false, true, g.rows(), g.O, g.cols(), 1.f, col, g.cols(), w.data<float>(), g.cols(), beta, yp, g.O);
    to_nchw(g, yp, y.data<float>());
}

void conv2d_backward_im2col(const Tensor& gy, const Tensor& x, const Tensor& w, const Tensor& gx, const Tensor& gw,
                            const Tensor& gb, const Conv2dAttrs& p) {
    const G g = geom_of(x, w, gy.size(2), gy.size(3), p);
    float* dyp = scratch(2, g.rows() * g.O);
    from_nchw(g, gy.data<float>(), dyp);
    float* col = scratch(0, g.rows() * g.cols());
    if (gx.defined()) {
        cpu_gemm(false, false, g.rows(), g.cols(), g.O, 1.f, dyp, g.O, w.data<float>(), g.cols(), 0.f, col, g.cols());
        col2im(g, col, gx.data<float>());
    }
    if (gw.defined()) {
        im2col(g, x.data<float>(), col);
        cpu_gemm(true, false, g.O, g.cols(), g.rows(), 1.f, dyp, g.O, col, g.cols(), 0.f, gw.data<float>(), g.cols());
    }
    if (gb.defined()) {
        float* pb = gb.data<float>();
        parallel_for(g.O, 8, [&](int64_t b0, int64_t e0) {
            for (int64_t o = b0; o < e0; ++o) {
                double s = 0;
                for (int64_t r = 0; r < g.rows(); ++r) s += dyp[r * g.O + o];
                pb[o] = float(s);
            }
        });
    }
}

}  // namespace hpt
