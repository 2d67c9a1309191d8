// conv2d: the fast path (oneDNN on the CPU; cuDNN on CUDA) against the reference loops in f64 over
// a sweep of shapes — forward, input gradient, weight gradient and bias gradient — and the
// reference loops themselves against a direct loop written here.
//
// Bounds: each output is a sum of n products accumulated in f32 in some order, so it is within
// n * eps/2 * S of the exact value, S being the same sum over absolute values (computed by running
// the reference on |x|, |w|, |g|).
#include <cstdint>
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <sstream>

#include "engine/ops/ops.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/pointwise_conv.h"
#include "tests/kernels/reference.h"
#include "tests/support/switches.h"
#include "tests/support/devices.h"

using namespace hpt;
using namespace hpt::test;

namespace {

struct ConvCase {
    int64_t N, C, O, H, W, KH, KW;
    Conv2dAttrs p;
    bool bias;

    int64_t out(int i) const {
        const int64_t in = i == 0 ? H : W, k = i == 0 ? KH : KW;
        const int64_t room = in + 2 * p.padding[i] - p.dilation[i] * (k - 1) - 1;
        return room < 0 ? 0 : room / p.stride[i] + 1;
    }
    bool valid() const { return C % p.groups == 0 && O % p.groups == 0 && out(0) >= 1 && out(1) >= 1; }
    std::string str() const {
        std::ostringstream os;
        os << "x [" << N << "," << C << "," << H << "," << W << "] w [" << O << "," << C / p.groups << "," << KH << ","
           << KW << "] stride " << p.stride[0] << "x" << p.stride[1] << " pad " << p.padding[0] << "x" << p.padding[1]
           << " dil " << p.dilation[0] << "x" << p.dilation[1] << " groups " << p.groups << (bias ? " bias" : "");
        return os.str();
    }
};

ConvCase square(int64_t N, int64_t C, int64_t O, int64_t H, int64_t W, int64_t k, int64_t s, int64_t pad, int64_t d,
                int64_t g, bool bias) {
    ConvCase c{N, C, O, H, W, k, k, {}, bias};
    c.p.stride[0] = c.p.stride[1] = s;
    c.p.padding[0] = c.p.padding[1] = pad;
    c.p.dilation[0] = c.p.dilation[1] = d;
    c.p.groups = g;
    return c;
}

// The sweep: one parameter at a time around a base case, then seeded random combinations of
// batch {1..4}, channels {1,3,5,16} (doubled when odd and groups = 2), kernel {1,3,5}, stride {1,2},
// padding {0,1,2}, dilation {1,2}, groups {1,2}, bias, odd spatial sizes; and a few non-square ones.
std::vector<ConvCase> sweep() {
    std::vector<ConvCase> cases;
    auto add = [&](ConvCase c) {
        if (c.p.groups == 2) {
            if (c.C % 2) c.C *= 2;
            if (c.O % 2) c.O *= 2;
        }
        if (c.valid()) cases.push_back(c);
    };
    const ConvCase base = square(2, 3, 5, 7, 9, 3, 1, 1, 1, 1, true);
    for (int64_t n : {1, 3, 4}) { ConvCase c = base; c.N = n; add(c); }
    for (int64_t ch : {1, 5, 16}) { ConvCase c = base; c.C = ch; add(c); c = base; c.O = ch; add(c); }
    for (int64_t k : {1, 5}) { ConvCase c = base; c.KH = c.KW = k; add(c); }
    { ConvCase c = base; c.p.stride[0] = c.p.stride[1] = 2; add(c); }
    for (int64_t pad : {0, 2}) { ConvCase c = base; c.p.padding[0] = c.p.padding[1] = pad; add(c); }
    { ConvCase c = base; c.p.dilation[0] = c.p.dilation[1] = 2; add(c); }
    { ConvCase c = base; c.p.groups = 2; add(c); }
    { ConvCase c = base; c.bias = false; add(c); }
    { ConvCase c = base; c.H = 1; c.W = 1; c.KH = c.KW = 1; c.p.padding[0] = c.p.padding[1] = 0; add(c); }

    std::mt19937 rng(2024);
    auto pick = [&](std::initializer_list<int64_t> v) { return *(v.begin() + std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)); };
    const std::vector<std::pair<int64_t, int64_t>> spatial = {{7, 9}, {9, 7}, {11, 8}, {5, 5}, {8, 13}};
    for (int i = 0; i < 120; ++i) {
        const auto hw = spatial[std::uniform_int_distribution<size_t>(0, spatial.size() - 1)(rng)];
        ConvCase c = square(pick({1, 2, 3, 4}), pick({1, 3, 5, 16}), pick({1, 3, 5, 16}), hw.first, hw.second,
                            pick({1, 3, 5}), pick({1, 2}), pick({0, 1, 2}), pick({1, 2}), pick({1, 2}), pick({0, 1}) == 1);
        add(c);
    }
    // Non-square kernels, strides, paddings and dilations.
    ConvCase c = base;
    c.KH = 3, c.KW = 1, c.p.padding[0] = 1, c.p.padding[1] = 0;
    add(c);
    c = base;
    c.KH = 1, c.KW = 5, c.p.stride[0] = 1, c.p.stride[1] = 2, c.p.padding[0] = 0, c.p.padding[1] = 2;
    add(c);
    c = square(3, 4, 6, 9, 8, 3, 2, 1, 1, 2, true);
    c.p.dilation[0] = 2, c.p.stride[1] = 1, c.p.padding[1] = 2;
    add(c);
    c = square(2, 16, 16, 11, 8, 3, 2, 1, 1, 16, false);  // depthwise
    add(c);
    return cases;
}

struct ConvResult {
    Tensor y, gx, gw, gb;
};

// conv2d on `dev` in dtype `dt` from the given values, then backward with gradient vg.
// Which gradients a case asks for: all; the weights' only (a first layer); the input's only
// (frozen weights, as in HPT-BN).
enum class Grads { all, weights_only, input_only };

// channels_last: x is an NCHW view of an NHWC leaf (a non-contiguous input); gx is that leaf's
// gradient viewed as NCHW again.
ConvResult run_conv(const ConvCase& c, const std::vector<double>& vx, const std::vector<double>& vw,
                    const std::vector<double>& vb, const std::vector<double>& vg, DType dt, Device dev,
                    Grads grads = Grads::all, bool channels_last = false) {
    auto mk = [&](const std::vector<double>& v, const Shape& s, bool grad) {
        Tensor t = from_vector<double>(v, s).to(dt).to(dev);
        return grad ? t.requires_grad_() : t;
    };
    Tensor xleaf, x;
    if (channels_last) {
        std::vector<double> nhwc(vx.size());
        for (int64_t i = 0; i < int64_t(vx.size()); ++i) {
            const auto idx = unravel(i, {c.N, c.C, c.H, c.W});
            nhwc[size_t(((idx[0] * c.H + idx[2]) * c.W + idx[3]) * c.C + idx[1])] = vx[size_t(i)];
        }
        xleaf = mk(nhwc, {c.N, c.H, c.W, c.C}, grads != Grads::weights_only);
        x = xleaf.permute({0, 3, 1, 2});
    } else {
        xleaf = x = mk(vx, {c.N, c.C, c.H, c.W}, grads != Grads::weights_only);
    }
    Tensor w = mk(vw, {c.O, c.C / c.p.groups, c.KH, c.KW}, grads != Grads::input_only);
    Tensor b = c.bias ? mk(vb, {c.O}, grads != Grads::input_only) : Tensor();
    Tensor y = conv2d(x, w, b, c.p);
    REQUIRE(y.shape() == Shape{c.N, c.O, c.out(0), c.out(1)});
    y.backward(from_vector<double>(vg, y.shape()).to(dt).to(dev));
    Tensor gx = xleaf.grad();
    if (gx.defined() && channels_last) gx = gx.permute({0, 3, 1, 2});
    return {y, gx, w.grad(), c.bias ? b.grad() : Tensor()};
}

std::vector<double> absv(const std::vector<double>& v) {
    std::vector<double> r(v.size());
    for (size_t i = 0; i < v.size(); ++i) r[i] = std::fabs(v[i]);
    return r;
}

double max_of(const Tensor& t) { return max_abs(t.to_vector<double>()); }

// f32-exact random values for case c.
struct ConvData {
    std::vector<double> x, w, b, g;
};
ConvData conv_data(const ConvCase& c, uint32_t seed) {
    ConvData d;
    d.x = widen(uniform_floats(c.N * c.C * c.H * c.W, seed));
    d.w = widen(uniform_floats(c.O * (c.C / c.p.groups) * c.KH * c.KW, seed + 1));
    d.b = widen(uniform_floats(c.O, seed + 2));
    d.g = widen(uniform_floats(c.N * c.O * c.out(0) * c.out(1), seed + 3));
    return d;
}

}  // namespace

HPT_DEVICE_TEST("conv2d fast path matches the reference loops over a sweep of shapes", "[conv2d]") {
    // The bounds below model f32 sums; cuDNN's FFT and Winograd algorithms do not round that way
    // (a 5x5 case came out 6x over its bound on the H100 when the search picked one).
    const test::ExactConvScope exact(true);
    const std::vector<ConvCase> cases = sweep();
    REQUIRE(cases.size() >= 100);
    INFO(cases.size() << " shapes");
    uint32_t seed = 3000;
    int k = 0;
    for (const ConvCase& c : cases) {
        // Every fifth case asks for the weight gradients only, and every fifth for the input's.
        // Every seventh takes a channels-last (non-contiguous) input.
        const Grads grads = k % 5 == 3 ? Grads::weights_only : k % 5 == 4 ? Grads::input_only : Grads::all;
        const bool channels_last = k % 7 == 2;
        ++k;
        INFO(c.str() << (grads == Grads::weights_only ? ", weight gradients only"
                         : grads == Grads::input_only ? ", input gradient only" : "")
                     << (channels_last ? ", channels-last input" : ""));
        const ConvData d = conv_data(c, seed += 4);
        ConvResult ref, abs_ref;
        {
            CpuConvScope g(CpuConvImpl::reference);
            ref = run_conv(c, d.x, d.w, d.b, d.g, DType::f64, Device::cpu());
            abs_ref = run_conv(c, absv(d.x), absv(d.w), absv(d.b), absv(d.g), DType::f64, Device::cpu());
        }
        const int64_t Cg = c.C / c.p.groups, Og = c.O / c.p.groups;
        const int64_t n_fwd = Cg * c.KH * c.KW + (c.bias ? 1 : 0), n_gx = Og * c.KH * c.KW,
                      n_gw = c.N * c.out(0) * c.out(1);
        // The CPU has two fast paths (oneDNN, and im2col + GEMM for groups = 1); CUDA runs its own
        // search, and pointwise convolutions once more with the batched cuBLAS GEMM forced.
        struct Path {
            const char* name;
            CpuConvImpl impl;
            bool gemm;
        };
        std::vector<Path> paths{{dev.is_cpu() ? "oneDNN" : "the algorithm search", CpuConvImpl::onednn, false}};
        if (dev.is_cpu() && c.p.groups == 1) paths.push_back({"im2col + GEMM", CpuConvImpl::im2col, false});
        if (dev.is_cuda() && is_pointwise_conv(c.p, c.KH, c.KW))
            paths.push_back({"the batched cuBLAS GEMM", CpuConvImpl::onednn, true});
        for (const Path& path : paths) {
            INFO(path.name << " path");
            ConvResult got;
            {
                CpuConvScope g(path.impl);
#ifdef HPT_WITH_CUDA
                ConvGemmScope gs(path.gemm ? ConvGemm::always : cuda_conv_gemm());
#endif
                got = run_conv(c, d.x, d.w, d.b, d.g, DType::f32, dev, grads, channels_last);
            }
            CHECK(got.gx.defined() == (grads != Grads::weights_only));
            CHECK(got.gw.defined() == (grads != Grads::input_only));
            HPT_CHECK_CLOSE(got.y, ref.y, sum_tol(n_fwd, max_of(abs_ref.y)));
            if (got.gx.defined()) HPT_CHECK_CLOSE(got.gx, ref.gx, sum_tol(n_gx, max_of(abs_ref.gx)));
            if (got.gw.defined()) HPT_CHECK_CLOSE(got.gw, ref.gw, sum_tol(n_gw, max_of(abs_ref.gw)));
            if (c.bias && got.gb.defined()) HPT_CHECK_CLOSE(got.gb, ref.gb, sum_tol(n_gw, max_of(abs_ref.gb)));
        }
    }
}

// CUDA keeps at most 64 MiB of partial sums for a pointwise weight gradient
// (kernels/cuda/conv2d_cudnn.cpp): 2048 x 2048 f32 weights give 4 partials, so 6 samples take two
// rounds, the second short. The sweep's shapes all fit one round.
HPT_DEVICE_TEST("a wide pointwise convolution's weight gradient over more samples than partial sums", "[conv2d]") {
    const ConvCase c = square(6, 2048, 2048, 2, 2, 1, 1, 0, 1, 1, false);
    const ConvData d = conv_data(c, 3600);
    ConvResult ref, abs_ref;
    {
        CpuConvScope g(CpuConvImpl::reference);
        ref = run_conv(c, d.x, d.w, d.b, d.g, DType::f64, Device::cpu());
        abs_ref = run_conv(c, absv(d.x), absv(d.w), absv(d.b), absv(d.g), DType::f64, Device::cpu());
    }
#ifdef HPT_WITH_CUDA
    ConvGemmScope gs(dev.is_cuda() ? ConvGemm::always : cuda_conv_gemm());
#endif
    const ConvResult got = run_conv(c, d.x, d.w, d.b, d.g, DType::f32, dev, Grads::weights_only);
    HPT_CHECK_CLOSE(got.gw, ref.gw, sum_tol(c.N * c.H * c.W, max_of(abs_ref.gw)));
}

// C[b] = op(A[b]) op(B[b]) + beta C[b], reading A and B from the given offsets, the way a row-major
// batched GEMM reads its operands.
void batched_gemm(const BatchedGemm& g, const std::vector<double>& A, int64_t a_off, const std::vector<double>& B,
                  int64_t b_off, std::vector<double>& C, double beta) {
    REQUIRE(C.size() >= size_t((g.batch - 1) * g.sc + (g.M - 1) * g.ldc + g.N));
    for (int64_t b = 0; b < g.batch; ++b)
        for (int64_t i = 0; i < g.M; ++i)
            for (int64_t j = 0; j < g.N; ++j) {
                double acc = 0;
                for (int64_t k = 0; k < g.K; ++k) {
                    const double a = A.at(size_t(a_off + b * g.sa + (g.ta ? k * g.lda + i : i * g.lda + k)));
                    const double v = B.at(size_t(b_off + b * g.sb + (g.tb ? j * g.ldb + k : k * g.ldb + j)));
                    acc += a * v;
                }
                double& out = C[size_t(b * g.sc + i * g.ldc + j)];
                out = beta * out + acc;
            }
}

std::vector<double> run_batched_gemm(const BatchedGemm& g, const std::vector<double>& A, const std::vector<double>& B) {
    std::vector<double> C(size_t(g.batch * g.sc));
    batched_gemm(g, A, 0, B, 0, C, 0.0);
    return C;
}

// The weight gradient as kernels/cuda/conv2d_cudnn.cpp runs the plan: rounds into the partial sums
// (or straight into gw when there is one), then the row of ones that sums them.
std::vector<double> run_weight_grad_plan(const PointwiseWeightGrad& w, const std::vector<double>& gy,
                                         const std::vector<double>& x, int64_t gw_size) {
    std::vector<double> partials(size_t(w.parts * w.round.sc), -1.0);  // garbage that round 0 must overwrite
    for (int64_t r = 0; r < w.rounds; ++r) {
        BatchedGemm g = w.round;
        g.batch = w.batch(r);
        REQUIRE(g.batch >= 1);
        REQUIRE(g.batch <= w.parts);
        batched_gemm(g, gy, w.a_offset(r), x, w.b_offset(r), partials, r == 0 ? 0.0 : 1.0);
    }
    if (w.parts == 1) return std::vector<double>(partials.begin(), partials.begin() + gw_size);
    std::vector<double> gw(size_t(gw_size), -1.0);
    batched_gemm(w.reduce, std::vector<double>(size_t(w.parts), 1.0), 0, partials, 0, gw, 0.0);
    return gw;
}

TEST_CASE("a pointwise convolution is the batched GEMM that CUDA may run it as", "[conv2d][cpu]") {
    CpuConvScope guard(CpuConvImpl::reference);
    uint32_t seed = 3400;
    for (const ConvCase& c : {square(3, 5, 7, 4, 6, 1, 1, 0, 1, 1, false), square(1, 16, 3, 1, 1, 1, 1, 0, 1, 1, false),
                              square(2, 1, 4, 3, 5, 1, 1, 0, 1, 1, false)}) {
        INFO(c.str());
        REQUIRE(is_pointwise_conv(c.p, c.KH, c.KW));
        const ConvData d = conv_data(c, seed += 4);
        const ConvResult r = run_conv(c, d.x, d.w, d.b, d.g, DType::f64, Device::cpu());
        const int64_t hw = c.H * c.W;
        const std::vector<double> y = run_batched_gemm(pointwise_forward_gemm(c.N, c.C, c.O, hw), d.w, d.x);
        const std::vector<double> gx = run_batched_gemm(pointwise_backward_data_gemm(c.N, c.C, c.O, hw), d.w, d.g);
        HPT_CHECK_CLOSE(from_vector<double>(y, r.y.shape()), r.y, tol(DType::f64, 64, 64));
        HPT_CHECK_CLOSE(from_vector<double>(gx, r.gx.shape()), r.gx, tol(DType::f64, 64, 64));
        // Budgets for every sample's own partial, for one partial (no reduction), and for two
        // (with three samples: a short last round).
        const int64_t part_bytes = c.O * c.C * 8;
        for (const int64_t budget : {int64_t(1) << 40, part_bytes, 2 * part_bytes + 7}) {
            const PointwiseWeightGrad w = pointwise_weight_grad_gemm(c.N, c.C, c.O, hw, budget, 8);
            INFO("budget " << budget << ": " << w.parts << " partial sums in " << w.rounds << " rounds");
            CHECK(w.parts == std::min<int64_t>(c.N, budget / part_bytes));
            CHECK(w.rounds * w.parts >= c.N);
            const std::vector<double> gw = run_weight_grad_plan(w, d.g, d.x, r.gw.numel());
            HPT_CHECK_CLOSE(from_vector<double>(gw, r.gw.shape()), r.gw, tol(DType::f64, 64, 64));
        }
    }
    Conv2dAttrs p;
    CHECK_FALSE(is_pointwise_conv(p, 3, 3));
    p.stride[1] = 2;
    CHECK_FALSE(is_pointwise_conv(p, 1, 1));
    p = {};
    p.groups = 2;
    CHECK_FALSE(is_pointwise_conv(p, 1, 1));
}

TEST_CASE("conv2d reference loops match a direct loop written here", "[conv2d][cpu]") {
    CpuConvScope guard(CpuConvImpl::reference);
    std::vector<ConvCase> cases = {square(2, 4, 6, 7, 9, 3, 2, 1, 2, 2, true), square(1, 3, 2, 5, 6, 1, 1, 0, 1, 1, false),
                                   square(3, 2, 2, 6, 5, 5, 1, 2, 1, 2, true)};
    cases[0].p.stride[1] = 1, cases[0].p.padding[0] = 2, cases[0].KW = 2;
    uint32_t seed = 3500;
    for (const ConvCase& c : cases) {
        INFO(c.str());
        const ConvData d = conv_data(c, seed += 4);
        const ConvResult r = run_conv(c, d.x, d.w, d.b, d.g, DType::f64, Device::cpu());
        const int64_t OH = c.out(0), OW = c.out(1), Cg = c.C / c.p.groups, Og = c.O / c.p.groups;
        std::vector<double> y(size_t(c.N * c.O * OH * OW)), gx(d.x.size(), 0.0), gw(d.w.size(), 0.0), gb(size_t(c.O), 0.0);
        for (int64_t n = 0; n < c.N; ++n)
            for (int64_t o = 0; o < c.O; ++o)
                for (int64_t i = 0; i < OH; ++i)
                    for (int64_t j = 0; j < OW; ++j) {
                        const size_t yi = size_t(((n * c.O + o) * OH + i) * OW + j);
                        double acc = c.bias ? d.b[size_t(o)] : 0.0;
                        for (int64_t ci = 0; ci < Cg; ++ci)
                            for (int64_t u = 0; u < c.KH; ++u)
                                for (int64_t v = 0; v < c.KW; ++v) {
                                    const int64_t h = i * c.p.stride[0] - c.p.padding[0] + u * c.p.dilation[0];
                                    const int64_t q = j * c.p.stride[1] - c.p.padding[1] + v * c.p.dilation[1];
                                    if (h < 0 || h >= c.H || q < 0 || q >= c.W) continue;
                                    const size_t xi = size_t(((n * c.C + (o / Og) * Cg + ci) * c.H + h) * c.W + q);
                                    const size_t wi = size_t(((o * Cg + ci) * c.KH + u) * c.KW + v);
                                    acc += d.x[xi] * d.w[wi];
                                    gx[xi] += d.g[yi] * d.w[wi];
                                    gw[wi] += d.g[yi] * d.x[xi];
                                }
                        y[yi] = acc;
                        gb[size_t(o)] += d.g[yi];
                    }
        const Tolerance t = tol(DType::f64, 64, 64);
        HPT_CHECK_CLOSE(r.y, ref_tensor(y, r.y.shape()), t);
        HPT_CHECK_CLOSE(r.gx, ref_tensor(gx, r.gx.shape()), t);
        HPT_CHECK_CLOSE(r.gw, ref_tensor(gw, r.gw.shape()), t);
        if (c.bias) HPT_CHECK_CLOSE(r.gb, ref_tensor(gb, {c.O}), t);
    }
}

TEST_CASE("conv2d implementation switch: automatic picks a fast path for f32, the loops otherwise", "[conv2d][cpu]") {
    const ConvCase c = square(2, 3, 4, 7, 9, 3, 2, 1, 1, 1, true);
    const ConvData d = conv_data(c, 3900);
    CpuConvScope guard(CpuConvImpl::automatic);
    const ConvResult f32 = run_conv(c, d.x, d.w, d.b, d.g, DType::f32, Device::cpu());
    const ConvResult f64 = run_conv(c, d.x, d.w, d.b, d.g, DType::f64, Device::cpu());
    HPT_CHECK_CLOSE(f32.y, f64.y, sum_tol(28, 28.0));
    set_cpu_conv_impl(CpuConvImpl::onednn);
    CHECK_THROWS_WITH(run_conv(c, d.x, d.w, d.b, d.g, DType::f64, Device::cpu()), Catch::Contains("f32 only"));
}

TEST_CASE("Winograd 3x3 convolutions (automatic, AVX-512) match the reference loops within their transform's rounding", "[conv2d][cpu]") {
    // automatic runs oneDNN's Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions of 16+ channels
    // on AVX-512 cores (kernels/cpu/conv2d.cpp; ONEDNN_VERBOSE=1 shows jit_wino_4x3 for all four
    // cases on the AVX-512 EPYC here), the direct convolution elsewhere. Both stay within the f32
    // sum bound: Winograd's worst error here was 0.079 of it (printed below).
    const std::vector<ConvCase> cases = {square(2, 16, 24, 9, 9, 3, 1, 1, 1, 1, false), square(3, 32, 16, 4, 4, 3, 1, 1, 1, 1, true),
                                         square(2, 64, 64, 8, 8, 3, 1, 1, 1, 1, false), square(1, 16, 16, 13, 7, 3, 1, 0, 1, 1, true)};
    uint32_t seed = 4100;
    double worst = 0;
    for (const ConvCase& c : cases) {
        INFO(c.str());
        const ConvData d = conv_data(c, seed += 4);
        ConvResult ref, abs_ref, got;
        {
            CpuConvScope g(CpuConvImpl::reference);
            ref = run_conv(c, d.x, d.w, d.b, d.g, DType::f64, Device::cpu());
            abs_ref = run_conv(c, absv(d.x), absv(d.w), absv(d.b), absv(d.g), DType::f64, Device::cpu());
        }
        {
            CpuConvScope g(CpuConvImpl::automatic);
            got = run_conv(c, d.x, d.w, d.b, d.g, DType::f32, Device::cpu());
        }
        const int64_t n_fwd = c.C * 9 + (c.bias ? 1 : 0), n_gx = c.O * 9, n_gw = c.N * c.out(0) * c.out(1);
        const auto ratio = [](const Tensor& a, const Tensor& b, const Tolerance& t) {
            const std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
            double r = 0;
            for (size_t i = 0; i < x.size(); ++i) r = std::max(r, std::fabs(x[i] - y[i]) / (t.atol + t.rtol * std::fabs(y[i])));
            return r;
        };
        for (const double r : {ratio(got.y, ref.y, sum_tol(n_fwd, max_of(abs_ref.y))), ratio(got.gx, ref.gx, sum_tol(n_gx, max_of(abs_ref.gx))),
                               ratio(got.gw, ref.gw, sum_tol(n_gw, max_of(abs_ref.gw)))}) {
            CHECK(r <= 1.0);
            worst = std::max(worst, r);
        }
    }
    std::printf("Winograd: worst error %.3g of the f32 sum bound\n", worst);
}
