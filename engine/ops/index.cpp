// Front-ends and backward formulas of cat, index_select and gather.
#include "engine/autograd/record.h"
#include "engine/ops/op_utils.h"
#include "engine/ops/ops.h"
#include <cstdint>

namespace hpt {

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
    HPT_CHECK(!xs.empty(), "op 'cat': no tensors given");
    for (size_t i = 0; i < xs.size(); ++i) HPT_CHECK(xs[i].defined(), "op 'cat': tensor ", i, " is undefined");
    const Tensor& x0 = xs[0];
    HPT_CHECK(x0.dim() >= 1, "op 'cat': cannot concatenate 0-dim tensors");
    dim = wrap_dim(dim, x0.dim(), "cat");
    Shape s = x0.shape();
    s[size_t(dim)] = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
        const Tensor& x = xs[i];
        HPT_CHECK(x.dtype() == x0.dtype(), "op 'cat': dtypes differ: ", desc(x0), " and ", desc(x), " (tensor ", i, ")");
        bool fits = x.dim() == x0.dim();
        for (int64_t d = 0; fits && d < x.dim(); ++d) fits = d == dim || x.size(d) == x0.size(d);
        HPT_CHECK(fits, "op 'cat': tensor ", i, " ", desc(x), " does not match ", desc(x0), " outside dim ", dim);
        s[size_t(dim)] += x.size(dim);
    }
    const Device d = common_device("cat", xs);
    Tensor out = empty(s, x0.dtype(), d);
    DimAttrs a{dim, false};
    run_kernel(OpId::cat, xs, {out}, &a);
    if (should_record(xs)) record(OpId::cat, xs, {out}, keep(a));
    return out;
}

std::vector<Tensor> backward_cat(const BackwardCtx& c) {
    const int64_t dim = c.attr<DimAttrs>().dim;
    std::vector<Tensor> g;
    int64_t at = 0;
    for (size_t i = 0; i < c.inputs.size(); ++i) {
        const int64_t n = c.inputs[i].shape[size_t(dim)];
        g.push_back(c.needs_grad(i) ? c.grad_out[0].slice(dim, at, at + n) : Tensor());
        at += n;
    }
    return g;
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
    check_defined("index_select", {x, index});
    check_dtype("index_select", index, DType::i64, "index");
    check_rank("index_select", index, 1, "index");
    HPT_CHECK(x.dim() >= 1, "op 'index_select' on a 0-dim tensor");
    dim = wrap_dim(dim, x.dim(), "index_select");
    Shape s = x.shape();
    s[size_t(dim)] = index.size(0);
    const Device d = common_device("index_select", {x, index});
    Tensor out = empty(s, x.dtype(), d);
    DimAttrs a{dim, false};
    const Tensor ic = index.contiguous();
    run_kernel(OpId::index_select, {x.contiguous(), ic}, {out}, &a);
    if (should_record({x})) record(OpId::index_select, {x, index}, {out}, keep(a), {ic});
    return out;
}

std::vector<Tensor> backward_index_select(const BackwardCtx& c) {
    const Tensor g = c.grad_out[0].contiguous();
    Tensor gx = empty(c.inputs[0].shape, g.dtype(), g.device());
    run_kernel(OpId::index_add, {c.saved[0], g}, {gx}, c.attrs);
    return {gx, Tensor()};
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
    check_defined("gather", {x, index});
    check_dtype("gather", index, DType::i64, "index");
    HPT_CHECK(index.dim() == x.dim() && x.dim() >= 1, "op 'gather': index ", desc(index), " must have the rank of ",
              desc(x));
    dim = wrap_dim(dim, x.dim(), "gather");
    for (int64_t d = 0; d < x.dim(); ++d) {
        HPT_CHECK(d == dim || index.size(d) <= x.size(d), "op 'gather': index ", desc(index), " is larger than ",
                  desc(x), " in dim ", d);
    }
    const Device d = common_device("gather", {x, index});
    Tensor out = empty(index.shape(), x.dtype(), d);
    DimAttrs a{dim, false};
    const Tensor ic = index.contiguous();
    run_kernel(OpId::gather, {x.contiguous(), ic}, {out}, &a);
    if (should_record({x})) record(OpId::gather, {x, index}, {out}, keep(a), {ic});
    return out;
}

std::vector<Tensor> backward_gather(const BackwardCtx& c) {
    const Tensor g = c.grad_out[0].contiguous();
    Tensor gx = empty(c.inputs[0].shape, g.dtype(), g.device());
    run_kernel(OpId::scatter_add, {c.saved[0], g}, {gx}, c.attrs);
    return {gx, Tensor()};
}

void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& buf, const SgdAttrs& a) {
    check_defined("sgd_step", {param, grad, buf});
    check_same_dtype("sgd_step", {param, grad, buf});
    check_floating("sgd_step", param);
    HPT_CHECK(param.shape() == grad.shape() && param.shape() == buf.shape() && param.is_contiguous() &&
                  grad.is_contiguous() && buf.is_contiguous(),
              "op 'sgd_step': param ", desc(param), ", grad ", desc(grad), " and momentum ", desc(buf),
              " must be contiguous and of one shape");
    run_kernel(OpId::sgd_step, {param, grad, buf}, {}, &a);
    param.storage()->bump_version();
    buf.storage()->bump_version();
}

void fill_random(const Tensor& out, const RandomAttrs& a) {
    check_defined("fill_random", {out});
    check_floating("fill_random", out);
    HPT_CHECK(out.is_contiguous(), "op 'fill_random': output ", desc(out), " must be contiguous");
    run_kernel(OpId::fill_random, {}, {out}, &a);
    out.storage()->bump_version();
}

}  // namespace hpt
