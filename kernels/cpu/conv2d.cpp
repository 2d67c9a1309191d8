// CPU conv2d: the reference loops and the dispatch between them and oneDNN.
//
// The loops accumulate in double and parallelise over disjoint outputs only (samples for the
// input gradient, output channels for the weight gradient), so they are deterministic.
#include "kernels/cpu/conv2d.h"

#include <cstdint>
#include <atomic>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/ops/registry.h"
#include "kernels/cpu/parallel.h"

namespace hpt {

namespace {

CpuConvImpl impl_from_env() {
    const char* e = std::getenv("HPT_CPU_CONV");
    if (!e) return CpuConvImpl::automatic;
    const std::string v = e;
    if (v == "reference") return CpuConvImpl::reference;
    if (v == "onednn") return CpuConvImpl::onednn;
    if (v == "im2col") return CpuConvImpl::im2col;
    HPT_CHECK(v == "auto", "HPT_CPU_CONV=", v, ": expected auto, reference, onednn or im2col");
    return CpuConvImpl::automatic;
}

std::atomic<CpuConvImpl> g_impl{impl_from_env()};

// On AVX2-only cores im2col + GEMM beats oneDNN's direct convolution for spatial kernels on
// output maps of at most 16 pixels (ResNet-18's layer4 at 32x32 input: 72 vs 96 ms and 137 vs
// 156 ms forward+backward at batch 64 on 2 AVX2 cores); on larger maps and for 1x1 kernels oneDNN
// wins. With AVX-512 oneDNN's direct kernels win there too (2 AVX-512 EPYC cores: layer4 3x3 39-44
// vs 53-60 ms, layer4.0.conv1 25-29 vs 27-33 ms). bench_kernels with HPT_CPU_CONV=im2col / onednn,
// bench/results/cpu/README.md. The choice depends only on the machine, so a run and its resumption
// on one machine take the same path (bit-for-bit resume).
bool im2col_wins(const Tensor& x, const Tensor& w, int64_t oh, int64_t ow, const Conv2dAttrs& p) {
    static const bool avx512 = __builtin_cpu_supports("avx512f");
    return !avx512 && oh * ow <= 16 && w.size(2) * w.size(3) > 1 && conv2d_im2col_fits(x, w, oh, ow, p);
}

struct Geom {
    int64_t N, C, H, W, O, Cg, Og, KH, KW, OH, OW, G;
    int64_t sh, sw, ph, pw, dh, dw;
};

Geom geom(const Tensor& x, const Tensor& w, int64_t oh, int64_t ow, const Conv2dAttrs& p) {
    Geom g;
    g.N = x.size(0), g.C = x.size(1), g.H = x.size(2), g.W = x.size(3);
    g.O = w.size(0), g.KH = w.size(2), g.KW = w.size(3), g.G = p.groups;
    g.Cg = g.C / g.G, g.Og = g.O / g.G, g.OH = oh, g.OW = ow;
    g.sh = p.stride[0], g.sw = p.stride[1], g.ph = p.padding[0], g.pw = p.padding[1];
    g.dh = p.dilation[0], g.dw = p.dilation[1];
    return g;
}

template <class T>
void forward_ref(const Geom& g, const T* x, const T* w, const T* b, T* y) {
    parallel_for(g.N * g.O, 1, [&](int64_t begin, int64_t end) {
        for (int64_t no = begin; no < end; ++no) {
            const int64_t n = no / g.O, o = no % g.O, grp = o / g.Og;
            for (int64_t i = 0; i < g.OH; ++i) {
                for (int64_t j = 0; j < g.OW; ++j) {
                    double acc = b ? double(b[o]) : 0.0;
                    for (int64_t c = 0; c < g.Cg; ++c) {
                        const T* xp = x + ((n * g.C + grp * g.Cg + c) * g.H) * g.W;
                        const T* wp = w + ((o * g.Cg + c) * g.KH) * g.KW;
                        for (int64_t u = 0; u < g.KH; ++u) {
                            const int64_t h = i * g.sh - g.ph + u * g.dh;
                            if (h < 0 || h >= g.H) continue;
                            for (int64_t v = 0; v < g.KW; ++v) {
                                const int64_t q = j * g.sw - g.pw + v * g.dw;
                                if (q < 0 || q >= g.W) continue;
                                acc += double(xp[h * g.W + q]) * double(wp[u * g.KW + v]);
                            }
                        }
                    }
                    y[((n * g.O + o) * g.OH + i) * g.OW + j] = T(acc);
                }
            }
        }
    });
}

template <class T>
void backward_ref(const Geom& g, const T* gy, const T* x, const T* w, T* gx, T* gw, T* gb) {
    if (gx) {
        parallel_for(g.N, 1, [&](int64_t begin, int64_t end) {
            std::vector<double> acc(size_t(g.C * g.H * g.W));
            for (int64_t n = begin; n < end; ++n) {
                std::fill(acc.begin(), acc.end(), 0.0);
                for (int64_t o = 0; o < g.O; ++o) {
                    const int64_t grp = o / g.Og;
                    for (int64_t i = 0; i < g.OH; ++i) {
                        for (int64_t j = 0; j < g.OW; ++j) {
                            const double gv = double(gy[((n * g.O + o) * g.OH + i) * g.OW + j]);
                            for (int64_t c = 0; c < g.Cg; ++c) {
                                double* ap = acc.data() + ((grp * g.Cg + c) * g.H) * g.W;
                                const T* wp = w + ((o * g.Cg + c) * g.KH) * g.KW;
                                for (int64_t u = 0; u < g.KH; ++u) {
                                    const int64_t h = i * g.sh - g.ph + u * g.dh;
                                    if (h < 0 || h >= g.H) continue;
                                    for (int64_t v = 0; v < g.KW; ++v) {
                                        const int64_t q = j * g.sw - g.pw + v * g.dw;
                                        if (q < 0 || q >= g.W) continue;
                                        ap[h * g.W + q] += gv * double(wp[u * g.KW + v]);
                                    }
                                }
                            }
                        }
                    }
                }
                for (size_t k = 0; k < acc.size(); ++k) gx[n * g.C * g.H * g.W + int64_t(k)] = T(acc[k]);
            }
        });
    }
    if (gw || gb) {
        parallel_for(g.O, 1, [&](int64_t begin, int64_t end) {
            std::vector<double> acc(size_t(g.Cg * g.KH * g.KW));
            for (int64_t o = begin; o < end; ++o) {
                const int64_t grp = o / g.Og;
                std::fill(acc.begin(), acc.end(), 0.0);
                double bacc = 0.0;
                for (int64_t n = 0; n < g.N; ++n) {
                    for (int64_t i = 0; i < g.OH; ++i) {
                        for (int64_t j = 0; j < g.OW; ++j) {
                            const double gv = double(gy[((n * g.O + o) * g.OH + i) * g.OW + j]);
                            bacc += gv;
                            if (!gw) continue;
                            for (int64_t c = 0; c < g.Cg; ++c) {
                                const T* xp = x + ((n * g.C + grp * g.Cg + c) * g.H) * g.W;
                                for (int64_t u = 0; u < g.KH; ++u) {
                                    const int64_t h = i * g.sh - g.ph + u * g.dh;
                                    if (h < 0 || h >= g.H) continue;
                                    for (int64_t v = 0; v < g.KW; ++v) {
                                        const int64_t q = j * g.sw - g.pw + v * g.dw;
                                        if (q < 0 || q >= g.W) continue;
                                        acc[size_t((c * g.KH + u) * g.KW + v)] += gv * double(xp[h * g.W + q]);
                                    }
                                }
                            }
                        }
                    }
                }
                if (gw)
                    for (size_t k = 0; k < acc.size(); ++k) gw[o * int64_t(acc.size()) + int64_t(k)] = T(acc[k]);
                if (gb) gb[o] = T(bacc);
            }
        });
    }
}

// oneDNN's Winograd F(4x4, 3x3) against its direct convolution, forward + both backward passes
// of ResNet-18's (small stem) 3x3 stride-1 convolutions at batch 64 on 2 AVX-512 EPYC cores
// (bench_conv_layouts, bench/results/cpu/README.md): 37 vs 50 ms at 64 channels on 32x32, 26 vs
// 45, 18 vs 46 and 26 vs 45 ms at 128, 256 and 512 channels; the 3-channel stem is slower (16 vs
// 8 ms). oneDNN has no Winograd for other strides, nor without AVX-512. Its sums differ from the
// direct ones by transform rounding (as cuDNN's Winograd does, which PyTorch's GPU convolutions
// use by default); HPT_CPU_CONV=onednn keeps the direct convolution.
bool winograd_wins(const Tensor& x, const Tensor& w, const Conv2dAttrs& p) {
    static const bool avx512 = __builtin_cpu_supports("avx512f");
    return avx512 && w.size(2) == 3 && w.size(3) == 3 && p.stride[0] == 1 && p.stride[1] == 1 && p.dilation[0] == 1 &&
           p.dilation[1] == 1 && p.groups == 1 && x.size(1) >= 16 && w.size(0) >= 16;
}

enum class Path { reference, onednn, winograd, im2col };

// The rule for `automatic` is fixed (not timed at run time) so that a run and its resumption take
// the same path and produce the same bits.
Path choose(const Tensor& x, const Tensor& w, int64_t oh, int64_t ow, const Conv2dAttrs& p) {
    const CpuConvImpl impl = g_impl.load();
    const DType t = x.dtype();
    if (impl == CpuConvImpl::reference) return Path::reference;
    if (impl == CpuConvImpl::im2col) {
        HPT_CHECK(conv2d_im2col_fits(x, w, oh, ow, p), "conv2d: the im2col implementation needs f32, groups = 1 and a "
                  "column matrix under 256 MiB");
        return Path::im2col;
    }
    if (impl == CpuConvImpl::onednn) {
        HPT_CHECK(t == DType::f32, "conv2d: the oneDNN implementation takes f32 only, got ", dtype_name(t));
        return Path::onednn;
    }
    if (t != DType::f32) return Path::reference;
    if (winograd_wins(x, w, p)) return Path::winograd;
    return im2col_wins(x, w, oh, ow, p) ? Path::im2col : Path::onednn;
}

template <class T>
const T* ptr_or_null(const Tensor& t) {
    return t.defined() ? t.data<T>() : nullptr;
}
template <class T>
T* mut_or_null(const Tensor& t) {
    return t.defined() ? t.data<T>() : nullptr;
}

void conv2d_kernel(const KernelArgs& args) {
    const Tensor &x = args.in[0], &w = args.in[1], &b = args.in[2];
    const Tensor& y = args.out[0];
    const Conv2dAttrs& p = args.attr<Conv2dAttrs>();
    switch (choose(x, w, y.size(2), y.size(3), p)) {
        case Path::onednn: return conv2d_forward_onednn(x, w, b, y, p);
        case Path::winograd: return conv2d_forward_onednn(x, w, b, y, p, true);
        case Path::im2col: return conv2d_forward_im2col(x, w, b, y, p);
        case Path::reference: break;
    }
    const Geom g = geom(x, w, y.size(2), y.size(3), p);
    HPT_DISPATCH_FLOAT(x.dtype(), "conv2d", [&] {
        forward_ref<scalar_t>(g, x.data<scalar_t>(), w.data<scalar_t>(), ptr_or_null<scalar_t>(b), y.data<scalar_t>());
    });
}
HPT_REGISTER_KERNEL(conv2d, cpu, conv2d_kernel);

void conv2d_backward_kernel(const KernelArgs& args) {
    const Tensor &gy = args.in[0], &x = args.in[1], &w = args.in[2];
    const Tensor &gx = args.out[0], &gw = args.out[1], &gb = args.out[2];
    const Conv2dAttrs& p = args.attr<Conv2dAttrs>();
    switch (choose(x, w, gy.size(2), gy.size(3), p)) {
        case Path::onednn: return conv2d_backward_onednn(gy, x, w, gx, gw, gb, p);
        case Path::winograd: return conv2d_backward_onednn(gy, x, w, gx, gw, gb, p, true);
        case Path::im2col: return conv2d_backward_im2col(gy, x, w, gx, gw, gb, p);
        case Path::reference: break;
    }
    const Geom g = geom(x, w, gy.size(2), gy.size(3), p);
    HPT_DISPATCH_FLOAT(x.dtype(), "conv2d_backward", [&] {
        backward_ref<scalar_t>(g, gy.data<scalar_t>(), x.data<scalar_t>(), w.data<scalar_t>(),
                               mut_or_null<scalar_t>(gx), mut_or_null<scalar_t>(gw), mut_or_null<scalar_t>(gb));
    });
}
HPT_REGISTER_KERNEL(conv2d_backward, cpu, conv2d_backward_kernel);

}  // namespace

void set_cpu_conv_impl(CpuConvImpl impl) { g_impl = impl; }
CpuConvImpl cpu_conv_impl() { return g_impl.load(); }

}  // namespace hpt
