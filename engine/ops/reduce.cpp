// Front-ends and backward formulas of the reductions.
#include <cstdint>
#include <algorithm>

#include "engine/autograd/record.h"
#include "engine/ops/op_utils.h"
#include "engine/ops/ops.h"

namespace hpt {

namespace {

ReduceAttrs reduce_attrs(const Tensor& x, std::vector<int64_t> dims, bool keepdim, const char* op) {
    ReduceAttrs a;
    a.keepdim = keepdim;
    if (dims.empty()) {
        for (int64_t d = 0; d < x.dim(); ++d) a.dims.push_back(d);
    } else {
        for (int64_t d : dims) a.dims.push_back(wrap_dim(d, x.dim(), op));
        std::sort(a.dims.begin(), a.dims.end());
        HPT_CHECK(std::adjacent_find(a.dims.begin(), a.dims.end()) == a.dims.end(), "op '", op,
                  "': repeated dim in ", shape_str(dims));
    }
    return a;
}

Shape reduced_shape(const Shape& s, const std::vector<int64_t>& dims, bool keepdim) {
    Shape out;
    for (int64_t d = 0; d < int64_t(s.size()); ++d) {
        const bool r = std::binary_search(dims.begin(), dims.end(), d);
        if (!r) {
            out.push_back(s[size_t(d)]);
        } else if (keepdim) {
            out.push_back(1);
        }
    }
    return out;
}

Tensor reduce(OpId op, const Tensor& x, std::vector<int64_t> dims, bool keepdim) {
    const char* name = op_name(op);
    check_defined(name, {x});
    if (op == OpId::mean) check_floating(name, x);
    auto a = reduce_attrs(x, std::move(dims), keepdim, name);
    Tensor out = empty(reduced_shape(x.shape(), a.dims, keepdim), x.dtype(), x.device());
    const Tensor out_k = out.detach().view(reduced_shape(x.shape(), a.dims, true));
    run_kernel(op, {x.contiguous()}, {out_k}, &a);
    if (should_record({x})) record(op, {x}, {out}, keep(a));
    return out;
}

// The gradient of a reduction's output, broadcast back over the input's shape.
Tensor expand_back(const BackwardCtx& c) {
    const ReduceAttrs& a = c.attr<ReduceAttrs>();
    const Shape& in = c.inputs[0].shape;
    return c.grad_out[0].reshape(reduced_shape(in, a.dims, true)).expand(in);
}

}  // namespace

Tensor sum(const Tensor& a, std::vector<int64_t> dims, bool keepdim) {
    return reduce(OpId::sum, a, std::move(dims), keepdim);
}

Tensor mean(const Tensor& a, std::vector<int64_t> dims, bool keepdim) {
    return reduce(OpId::mean, a, std::move(dims), keepdim);
}

std::vector<Tensor> backward_sum(const BackwardCtx& c) { return {expand_back(c)}; }

std::vector<Tensor> backward_mean(const BackwardCtx& c) {
    const Shape& in = c.inputs[0].shape;
    const Shape out = reduced_shape(in, c.attr<ReduceAttrs>().dims, true);
    const double n = double(shape_numel(in)) / double(std::max<int64_t>(shape_numel(out), 1));
    return {expand_back(c) / n};
}

Tensor sum_to(const Tensor& a, const Shape& shape) {
    check_defined("sum_to", {a});
    if (a.shape() == shape) return a;
    HPT_CHECK(shape.size() <= a.shape().size(), "sum_to: ", desc(a), " cannot be summed to ", shape_str(shape));
    const size_t lead = a.shape().size() - shape.size();
    std::vector<int64_t> dims;
    for (size_t i = 0; i < a.shape().size(); ++i) {
        if (i < lead) {
            dims.push_back(int64_t(i));
        } else if (shape[i - lead] == 1 && a.shape()[i] != 1) {
            dims.push_back(int64_t(i));
        } else {
            HPT_CHECK(shape[i - lead] == a.shape()[i], "sum_to: ", desc(a), " cannot be summed to ", shape_str(shape));
        }
    }
    if (dims.empty()) return a.reshape(shape);
    return sum(a, dims, true).reshape(shape);
}

std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) {
    check_defined("max", {x});
    HPT_CHECK(x.numel() > 0, "op 'max' on an empty tensor ", desc(x));
    DimAttrs a{wrap_dim(dim, x.dim(), "max"), keepdim};
    const std::vector<int64_t> dims = x.dim() ? std::vector<int64_t>{a.dim} : std::vector<int64_t>{};
    const Shape s = reduced_shape(x.shape(), dims, keepdim);
    Tensor values = empty(s, x.dtype(), x.device());
    Tensor indices = empty(s, DType::i64, x.device());
    const Shape sk = reduced_shape(x.shape(), dims, true);
    run_kernel(OpId::max, {x.contiguous()}, {values.detach().view(sk), indices.detach().view(sk)}, &a);
    if (should_record({x})) record(OpId::max, {x}, {values, indices}, keep(a), {indices});
    return {values, indices};
}

std::vector<Tensor> backward_max(const BackwardCtx& c) {
    const DimAttrs& a = c.attr<DimAttrs>();
    const Shape& in = c.inputs[0].shape;
    if (in.empty()) return {c.grad_out[0]};
    const std::vector<int64_t> dims{a.dim};
    const Shape sk = reduced_shape(in, dims, true);
    const Tensor g = c.grad_out[0].reshape(sk).contiguous();
    const Tensor idx = c.saved[0].reshape(sk).contiguous();
    Tensor gi = empty(in, g.dtype(), g.device());
    DimAttrs sa{a.dim, true};
    run_kernel(OpId::scatter_add, {idx, g}, {gi}, &sa);
    return {gi};
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
    check_defined("argmax", {x});
    HPT_CHECK(x.numel() > 0, "op 'argmax' on an empty tensor ", desc(x));
    DimAttrs a{wrap_dim(dim, x.dim(), "argmax"), keepdim};
    const std::vector<int64_t> dims = x.dim() ? std::vector<int64_t>{a.dim} : std::vector<int64_t>{};
    Tensor indices = empty(reduced_shape(x.shape(), dims, keepdim), DType::i64, x.device());
    run_kernel(OpId::argmax, {x.contiguous()}, {indices.detach().view(reduced_shape(x.shape(), dims, true))}, &a);
    return indices;
}

}  // namespace hpt
