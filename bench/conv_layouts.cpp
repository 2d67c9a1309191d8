// bench_conv_layouts: what the layout of activations costs oneDNN's convolutions, measured before
// changing the engine's layout. For every ResNet-18 (small stem) convolution at batch 64 it times
// forward + backward-data + backward-weights four ways:
//   nchw:    our tensors as they are (plain NCHW), primitives in oneDNN's preferred (blocked)
//            layouts, activations reordered in and out around each pass, as kernels/cpu/
//            conv2d_onednn.cpp does (one reorder of the output gradient shared by both backward passes);
//   nhwc:    activations channels-last, which oneDNN's jit convolutions read and write directly;
//   blocked: activations already in the blocked layouts (no reorders at all): the floor an engine
//            that kept oneDNN's layouts between every op would reach;
//   winograd: as nchw, with oneDNN's Winograd F(4x4, 3x3) where it has one (3x3, stride 1).
// Weights are reordered from OIHW in every variant (they change every step). One JSON line per
// shape, with the implementation oneDNN chose for each pass.
#include <dnnl.hpp>

#include <algorithm>
#include <iostream>
#include <memory>
#include <unordered_map>
#include <vector>

#include "bench/common.h"
#include "bench/shapes.h"
#include "kernels/cpu/parallel.h"

using namespace hpt::bench;
using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

dnnl::engine eng(dnnl::engine::kind::cpu, 0);
dnnl::stream strm(eng);

memory filled(const memory::desc& d, float v) {
    memory m(d, eng);
    float* p = static_cast<float*>(m.get_data_handle());
    for (size_t i = 0; i < d.get_size() / sizeof(float); ++i) p[i] = v * float(1 + i % 7);
    return m;
}

// Reorder primitives come from oneDNN's primitive cache after the first call of each pair.
void reorder(memory from, memory to) { dnnl::reorder(from, to).execute(strm, from, to); }

// One variant: primitives for activations in `act` (tag::any: oneDNN's choice), user tensors in
// `user` (nchw for the plain variant, else the primitives' own layouts).
struct Variant {
    std::string impl;
    std::function<void()> step;
};

Variant make(const ConvShape& s, tag act, bool reorder_acts,
             dnnl::algorithm alg = dnnl::algorithm::convolution_direct) {
    const memory::dims src{s.n, s.c, s.h, s.w}, wei{s.o, s.c, s.k, s.k}, dst{s.n, s.o, s.out_h(), s.out_w()};
    const memory::dims strides{s.stride, s.stride}, pad{s.pad, s.pad}, dil{0, 0};
    const memory::desc a_src(src, dt::f32, act), a_dst(dst, dt::f32, act), a_wei(wei, dt::f32, tag::any);
    auto fpd = std::make_shared<dnnl::convolution_forward::primitive_desc>(
        dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, a_src,
                                        a_wei, a_dst, strides, dil, pad, pad),
        eng);
    auto dpd = std::make_shared<dnnl::convolution_backward_data::primitive_desc>(
        dnnl::convolution_backward_data::desc(alg, a_src, a_wei, a_dst, strides, dil,
                                              pad, pad),
        eng, *fpd);
    auto wpd = std::make_shared<dnnl::convolution_backward_weights::primitive_desc>(
        dnnl::convolution_backward_weights::desc(alg, a_src, a_wei, a_dst, strides,
                                                 dil, pad, pad),
        eng, *fpd);
    auto fwd = std::make_shared<dnnl::convolution_forward>(*fpd);
    auto bd = std::make_shared<dnnl::convolution_backward_data>(*dpd);
    auto bw = std::make_shared<dnnl::convolution_backward_weights>(*wpd);
    const memory::desc p_src(src, dt::f32, tag::nchw), p_dst(dst, dt::f32, tag::nchw), p_wei(wei, dt::f32, tag::oihw);
    // User tensors: plain when the variant reorders, else already in the primitives' layouts.
    auto x = std::make_shared<memory>(filled(reorder_acts ? p_src : fpd->src_desc(), 0.01f));
    auto gy = std::make_shared<memory>(filled(reorder_acts ? p_dst : dpd->diff_dst_desc(), 0.02f));
    auto y = std::make_shared<memory>(reorder_acts ? p_dst : fpd->dst_desc(), eng);
    auto gx = std::make_shared<memory>(reorder_acts ? p_src : dpd->diff_src_desc(), eng);
    auto w = std::make_shared<memory>(filled(p_wei, 0.03f));
    auto gw = std::make_shared<memory>(p_wei, eng);
    // The primitives' buffers.
    auto bx = std::make_shared<memory>(fpd->src_desc(), eng), by = std::make_shared<memory>(fpd->dst_desc(), eng);
    auto bgy = std::make_shared<memory>(dpd->diff_dst_desc(), eng), bgx = std::make_shared<memory>(dpd->diff_src_desc(), eng);
    auto bwx = std::make_shared<memory>(wpd->src_desc(), eng), bwgy = std::make_shared<memory>(wpd->diff_dst_desc(), eng);
    auto bwf = std::make_shared<memory>(fpd->weights_desc(), eng), bwd = std::make_shared<memory>(dpd->weights_desc(), eng);
    auto bgw = std::make_shared<memory>(wpd->diff_weights_desc(), eng);
    Variant v;
    v.impl = std::string(fpd->impl_info_str()) + " / " + dpd->impl_info_str() + " / " + wpd->impl_info_str();
    v.step = [=] {
        reorder(*w, *bwf);
        const memory& fx = reorder_acts && fpd->src_desc() != x->get_desc() ? (reorder(*x, *bx), *bx) : *x;
        const bool y_out = reorder_acts && fpd->dst_desc() != y->get_desc();
        fwd->execute(strm, {{DNNL_ARG_SRC, fx}, {DNNL_ARG_WEIGHTS, *bwf}, {DNNL_ARG_DST, y_out ? *by : *y}});
        if (y_out) reorder(*by, *y);
        reorder(*w, *bwd);
        const memory& dgy = reorder_acts && dpd->diff_dst_desc() != gy->get_desc() ? (reorder(*gy, *bgy), *bgy) : *gy;
        const bool gx_out = reorder_acts && dpd->diff_src_desc() != gx->get_desc();
        bd->execute(strm, {{DNNL_ARG_DIFF_DST, dgy}, {DNNL_ARG_WEIGHTS, *bwd}, {DNNL_ARG_DIFF_SRC, gx_out ? *bgx : *gx}});
        if (gx_out) reorder(*bgx, *gx);
        // The weight pass reuses the data pass's output gradient when their layouts agree.
        const memory& wgy = dgy.get_desc() == wpd->diff_dst_desc() ? dgy : (reorder(*gy, *bwgy), *bwgy);
        const memory& wx = x->get_desc() == wpd->src_desc() ? *x : (reorder(*x, *bwx), *bwx);
        bw->execute(strm, {{DNNL_ARG_SRC, wx}, {DNNL_ARG_DIFF_DST, wgy}, {DNNL_ARG_DIFF_WEIGHTS, *bgw}});
        reorder(*bgw, *gw);
        strm.wait();
    };
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const std::string out = argc > 1 ? argv[1] : "";
        if (argc > 2 || (!out.empty() && out[0] == '-')) {
            std::cout << "usage: bench_conv_layouts [OUT.jsonl]   (also prints the JSON lines; threads: HPT_NUM_THREADS)\n";
            return out == "-h" || out == "--help" ? 0 : 1;
        }
        Output o(out);
        for (const ConvShape& s : resnet18_small_convs(64)) {
            const Variant plain = make(s, tag::any, true), nhwc = make(s, tag::nhwc, false), blocked = make(s, tag::any, false);
            // oneDNN's Winograd, where it has one for the shape (3x3 stride 1 on AVX-512), with our
            // reorders: what the engine's automatic path now runs for those shapes.
            std::unique_ptr<Variant> wino;
            try {
                wino = std::make_unique<Variant>(make(s, tag::any, true, dnnl::algorithm::convolution_winograd));
            } catch (const dnnl::error&) {
            }
            // Alternating rounds, as the other benches do on this drifting VM.
            std::vector<double> t[4];
            for (int round = 0; round < 3; ++round) {
                t[0].push_back(time_it(plain.step, 2, 5, 1.0).median_ms);
                t[1].push_back(time_it(nhwc.step, 2, 5, 1.0).median_ms);
                t[2].push_back(time_it(blocked.step, 2, 5, 1.0).median_ms);
                if (wino) t[3].push_back(time_it(wino->step, 2, 5, 1.0).median_ms);
            }
            for (auto& v : t) std::sort(v.begin(), v.end());
            JsonLine j;
            j.str("bench", "conv_layouts").str("shape", s.key()).str("layer", s.layer).str("device", "cpu");
            j.str("cpu", cpu_model()).integer("threads", hpt::num_threads());
            j.num("nchw_reorders_ms", t[0][1]).num("nhwc_ms", t[1][1]).num("blocked_ms", t[2][1]);
            if (wino) j.num("winograd_nchw_reorders_ms", t[3][1]);
            else j.raw("winograd_nchw_reorders_ms", "null");
            j.str("nhwc_impl", nhwc.impl).str("blocked_impl", blocked.impl).str("winograd_impl", wino ? wino->impl : "none");
            j.str("git", git_sha());
            o.emit(j.line());
        }
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "bench_conv_layouts: " << e.what() << "\n";
        return 1;
    }
}
