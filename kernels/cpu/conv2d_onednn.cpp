// conv2d on oneDNN (f32): forward, and both backward passes in one call; the direct algorithm, or
// Winograd where the caller asks for it and oneDNN has it for the shape.
//
// oneDNN picks its own (blocked) layouts for the convolution; our tensors are plain NCHW/OIHW, so
// operands are reordered in and results out. Per shape we cache the primitives, the reorders and
// the blocked buffers, and the backward reorders the output gradient once for both passes.
// Calls are serialised by a mutex: the cached buffers belong to the shape, not to the caller.
#include <cstdint>
#include <dnnl.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "kernels/cpu/conv2d.h"

namespace hpt {

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine& cpu_engine() {
    static dnnl::engine e(dnnl::engine::kind::cpu, 0);
    return e;
}
dnnl::stream& cpu_stream() {
    static dnnl::stream s(cpu_engine());
    return s;
}

// A user (plain) tensor and, if oneDNN wants another layout, a cached buffer in that layout.
struct Staged {
    memory::desc want;
    std::unique_ptr<memory> buf;  // only when `want` differs from the plain layout
    std::unique_ptr<dnnl::reorder> to_buf, from_buf;

    void init(const memory::desc& plain, const memory::desc& wanted, bool in, bool out) {
        want = wanted;
        if (wanted == plain) return;
        buf = std::make_unique<memory>(wanted, cpu_engine());
        if (in) to_buf = std::make_unique<dnnl::reorder>(memory(plain, cpu_engine(), DNNL_MEMORY_NONE), *buf);
        if (out) from_buf = std::make_unique<dnnl::reorder>(*buf, memory(plain, cpu_engine(), DNNL_MEMORY_NONE));
    }
    // The memory the primitive should use; copies `user` in when it is an input.
    memory in(memory user) {
        if (!buf) return user;
        to_buf->execute(cpu_stream(), user, *buf);
        return *buf;
    }
    memory out(const memory& user) { return buf ? *buf : user; }
    void finish(memory user) {
        if (buf) from_buf->execute(cpu_stream(), *buf, user);
    }
};

struct ConvPlan {
    memory::desc src, wei, bias, dst;  // plain user layouts
    memory::dims strides, dilates, pad_l, pad_r;
    bool has_bias = false;
    dnnl::algorithm alg = dnnl::algorithm::convolution_direct;  // of all three passes

    std::unique_ptr<dnnl::convolution_forward::primitive_desc> fwd_pd;
    std::unique_ptr<dnnl::convolution_forward> fwd;
    Staged f_src, f_wei, f_dst;

    bool bwd_ready = false;
    std::unique_ptr<dnnl::convolution_backward_data::primitive_desc> bd_pd;
    std::unique_ptr<dnnl::convolution_backward_data> bd;
    std::unique_ptr<dnnl::convolution_backward_weights::primitive_desc> bw_pd;
    std::unique_ptr<dnnl::convolution_backward_weights> bw;
    Staged bd_gy, bd_wei, bd_gx, bw_src, bw_gy, bw_gw;
};

using Key = std::tuple<memory::dims, memory::dims, memory::dims, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                       int64_t, bool, bool>;

std::mutex g_mu;
std::map<Key, std::unique_ptr<ConvPlan>>& plans() {
    static std::map<Key, std::unique_ptr<ConvPlan>> m;
    return m;
}

ConvPlan& plan_for(const Tensor& x, const Tensor& w, const Tensor& y, bool has_bias, const Conv2dAttrs& p, bool winograd) {
    Key key{x.shape(), w.shape(), y.shape(), p.stride[0], p.stride[1], p.padding[0], p.padding[1], p.dilation[0],
            p.dilation[1], p.groups, has_bias, winograd};
    auto& m = plans();
    auto it = m.find(key);
    if (it != m.end()) return *it->second;

    auto pl = std::make_unique<ConvPlan>();
    const int64_t G = p.groups;
    pl->src = memory::desc(x.shape(), dt::f32, tag::nchw);
    pl->dst = memory::desc(y.shape(), dt::f32, tag::nchw);
    pl->wei = G == 1 ? memory::desc(w.shape(), dt::f32, tag::oihw)
                     : memory::desc({G, w.size(0) / G, w.size(1), w.size(2), w.size(3)}, dt::f32, tag::goihw);
    pl->has_bias = has_bias;
    pl->bias = memory::desc({w.size(0)}, dt::f32, tag::x);
    pl->strides = {p.stride[0], p.stride[1]};
    pl->dilates = {p.dilation[0] - 1, p.dilation[1] - 1};
    pl->pad_l = {p.padding[0], p.padding[1]};
    pl->pad_r = {p.padding[0], p.padding[1]};

    const memory::desc any_src(x.shape(), dt::f32, tag::any), any_dst(y.shape(), dt::f32, tag::any);
    const memory::desc any_wei(pl->wei.dims(), dt::f32, tag::any);
    const auto forward_pd = [&](dnnl::algorithm alg) {
        auto fd = has_bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, any_src, any_wei,
                                                             pl->bias, any_dst, pl->strides, pl->dilates, pl->pad_l, pl->pad_r)
                           : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, any_src, any_wei,
                                                             any_dst, pl->strides, pl->dilates, pl->pad_l, pl->pad_r);
        return std::make_unique<dnnl::convolution_forward::primitive_desc>(fd, cpu_engine());
    };
    if (winograd) {
        // Where oneDNN has no Winograd for the shape (or the machine) in all three passes, the
        // direct convolution: the backward passes must take the forward's algorithm.
        try {
            const auto wino = dnnl::algorithm::convolution_winograd;
            auto fwd_pd = forward_pd(wino);
            dnnl::convolution_backward_data::primitive_desc(
                dnnl::convolution_backward_data::desc(wino, any_src, any_wei, any_dst, pl->strides, pl->dilates, pl->pad_l,
                                                      pl->pad_r),
                cpu_engine(), *fwd_pd);
            dnnl::convolution_backward_weights::primitive_desc(
                dnnl::convolution_backward_weights::desc(wino, any_src, any_wei, pl->bias, any_dst, pl->strides, pl->dilates,
                                                         pl->pad_l, pl->pad_r),
                cpu_engine(), *fwd_pd);
            pl->fwd_pd = std::move(fwd_pd);
            pl->alg = wino;
        } catch (const dnnl::error&) {
        }
    }
    if (!pl->fwd_pd) pl->fwd_pd = forward_pd(dnnl::algorithm::convolution_direct);
    pl->fwd = std::make_unique<dnnl::convolution_forward>(*pl->fwd_pd);
    pl->f_src.init(pl->src, pl->fwd_pd->src_desc(), true, false);
    pl->f_wei.init(pl->wei, pl->fwd_pd->weights_desc(), true, false);
    pl->f_dst.init(pl->dst, pl->fwd_pd->dst_desc(), false, true);
    ConvPlan& ref = *pl;
    m.emplace(key, std::move(pl));
    return ref;
}

void init_backward(ConvPlan& pl) {
    if (pl.bwd_ready) return;
    const memory::desc any_src(pl.src.dims(), dt::f32, tag::any), any_dst(pl.dst.dims(), dt::f32, tag::any);
    const memory::desc any_wei(pl.wei.dims(), dt::f32, tag::any);
    dnnl::convolution_backward_data::desc dd(pl.alg, any_src, any_wei, any_dst, pl.strides, pl.dilates, pl.pad_l, pl.pad_r);
    pl.bd_pd = std::make_unique<dnnl::convolution_backward_data::primitive_desc>(dd, cpu_engine(), *pl.fwd_pd);
    pl.bd = std::make_unique<dnnl::convolution_backward_data>(*pl.bd_pd);
    // The weight gradient always has a bias gradient slot; unused when the conv has no bias.
    dnnl::convolution_backward_weights::desc wd(pl.alg, any_src, any_wei, pl.bias, any_dst, pl.strides, pl.dilates,
                                                pl.pad_l, pl.pad_r);
    pl.bw_pd = std::make_unique<dnnl::convolution_backward_weights::primitive_desc>(wd, cpu_engine(), *pl.fwd_pd);
    pl.bw = std::make_unique<dnnl::convolution_backward_weights>(*pl.bw_pd);
    pl.bd_gy.init(pl.dst, pl.bd_pd->diff_dst_desc(), true, false);
    pl.bd_wei.init(pl.wei, pl.bd_pd->weights_desc(), true, false);
    pl.bd_gx.init(pl.src, pl.bd_pd->diff_src_desc(), false, true);
    pl.bw_src.init(pl.src, pl.bw_pd->src_desc(), true, false);
    pl.bw_gy.init(pl.dst, pl.bw_pd->diff_dst_desc(), true, false);
    pl.bw_gw.init(pl.wei, pl.bw_pd->diff_weights_desc(), false, true);
    pl.bwd_ready = true;
}

memory wrap(const memory::desc& md, const Tensor& t) { return memory(md, cpu_engine(), t.data_ptr()); }

}  // namespace

void conv2d_forward_onednn(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y, const Conv2dAttrs& p,
                           bool winograd) {
    std::lock_guard<std::mutex> lock(g_mu);
    try {
        ConvPlan& pl = plan_for(x, w, y, b.defined(), p, winograd);
        const memory mx = wrap(pl.src, x), mw = wrap(pl.wei, w), my = wrap(pl.dst, y);
        std::unordered_map<int, memory> args{{DNNL_ARG_SRC, pl.f_src.in(mx)},
                                             {DNNL_ARG_WEIGHTS, pl.f_wei.in(mw)},
                                             {DNNL_ARG_DST, pl.f_dst.out(my)}};
        if (b.defined()) args.emplace(DNNL_ARG_BIAS, wrap(pl.bias, b));
        pl.fwd->execute(cpu_stream(), args);
        pl.f_dst.finish(my);
        cpu_stream().wait();
    } catch (const dnnl::error& e) {
        HPT_THROW("conv2d (oneDNN) failed for input ", shape_str(x.shape()), " weight ", shape_str(w.shape()), ": ",
                  e.what());
    }
}

void conv2d_backward_onednn(const Tensor& gy, const Tensor& x, const Tensor& w, const Tensor& gx, const Tensor& gw,
                            const Tensor& gb, const Conv2dAttrs& p, bool winograd) {
    std::lock_guard<std::mutex> lock(g_mu);
    try {
        ConvPlan& pl = plan_for(x, w, gy, gb.defined(), p, winograd);
        init_backward(pl);
        const memory mgy = wrap(pl.dst, gy);
        if (gx.defined()) {
            const memory mgx = wrap(pl.src, gx);
            pl.bd->execute(cpu_stream(), {{DNNL_ARG_DIFF_DST, pl.bd_gy.in(mgy)},
                                          {DNNL_ARG_WEIGHTS, pl.bd_wei.in(wrap(pl.wei, w))},
                                          {DNNL_ARG_DIFF_SRC, pl.bd_gx.out(mgx)}});
            pl.bd_gx.finish(mgx);
        }
        if (gw.defined() || gb.defined()) {
            // Reuse the output gradient already staged for the data pass when layouts agree.
            const bool same = gx.defined() && pl.bd_gy.buf && pl.bw_gy.want == pl.bd_gy.want;
            const memory gy_w = same ? *pl.bd_gy.buf : pl.bw_gy.in(mgy);
            memory::desc gw_md = pl.wei;
            Tensor gw_t = gw.defined() ? gw : empty(w.shape(), DType::f32);
            Tensor gb_t = gb.defined() ? gb : empty({w.size(0)}, DType::f32);
            const memory mgw = wrap(gw_md, gw_t);
            pl.bw->execute(cpu_stream(), {{DNNL_ARG_SRC, pl.bw_src.in(wrap(pl.src, x))},
                                          {DNNL_ARG_DIFF_DST, gy_w},
                                          {DNNL_ARG_DIFF_WEIGHTS, pl.bw_gw.out(mgw)},
                                          {DNNL_ARG_DIFF_BIAS, wrap(pl.bias, gb_t)}});
            pl.bw_gw.finish(mgw);
        }
        cpu_stream().wait();
    } catch (const dnnl::error& e) {
        HPT_THROW("conv2d backward (oneDNN) failed for input ", shape_str(x.shape()), " weight ", shape_str(w.shape()),
                  ": ", e.what());
    }
}

}  // namespace hpt
