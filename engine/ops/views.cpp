// View ops: new shape/strides/offset over the same storage. Differentiable; no kernels.
#include <cstdint>
#include <algorithm>
#include <numeric>
#include <optional>

#include "engine/autograd/record.h"
#include "engine/ops/op_utils.h"
#include "engine/ops/ops.h"

namespace hpt {

namespace {

Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = base.storage();
    impl->offset = offset;
    impl->shape = std::move(shape);
    impl->strides = std::move(strides);
    impl->dtype = base.dtype();
    return Tensor(impl);
}

// Strides that let `shape` view memory laid out as (old_shape, old_strides), if any exist.
// Walks the old dims from the innermost in runs that are contiguous among themselves; every new
// dim must fall inside one such run.
std::optional<Shape> view_strides(const Shape& old_shape, const Shape& old_strides, const Shape& shape) {
    if (shape_numel(shape) <= 1 || old_shape.empty()) return contiguous_strides(shape);
    Shape st(shape.size(), 1);
    int64_t vd = int64_t(shape.size()) - 1;
    int64_t base_stride = old_strides.back();
    int64_t run_numel = 1, view_numel = 1;
    for (int64_t td = int64_t(old_shape.size()) - 1; td >= 0; --td) {
        run_numel *= old_shape[size_t(td)];
        const bool run_ends = td == 0 || (old_shape[size_t(td - 1)] != 1 &&
                                          old_strides[size_t(td - 1)] != run_numel * base_stride);
        if (!run_ends) continue;
        while (vd >= 0 && (view_numel < run_numel || shape[size_t(vd)] == 1)) {
            st[size_t(vd)] = view_numel * base_stride;
            view_numel *= shape[size_t(vd)];
            --vd;
        }
        if (view_numel != run_numel) return std::nullopt;
        if (td > 0) {
            base_stride = old_strides[size_t(td - 1)];
            run_numel = 1;
            view_numel = 1;
        }
    }
    if (vd != -1) return std::nullopt;
    return st;
}

Shape infer_shape(const Shape& requested, int64_t numel, const char* op, const Shape& from) {
    Shape s = requested;
    int64_t known = 1, infer = -1;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == -1) {
            HPT_CHECK(infer < 0, "op '", op, "': more than one -1 in shape ", shape_str(requested));
            infer = int64_t(i);
        } else {
            HPT_CHECK(s[i] >= 0, "op '", op, "': negative size in shape ", shape_str(requested));
            known *= s[i];
        }
    }
    if (infer >= 0) {
        HPT_CHECK(known > 0 && numel % known == 0, "op '", op, "': cannot infer -1 in ", shape_str(requested),
                  " for ", numel, " elements (from ", shape_str(from), ")");
        s[size_t(infer)] = numel / known;
    }
    HPT_CHECK(shape_numel(s) == numel, "op '", op, "': shape ", shape_str(requested), " is invalid for ",
              numel, " elements (from ", shape_str(from), ")");
    return s;
}

Tensor recorded_view(const Tensor& x, const Shape& shape) {
    auto st = view_strides(x.shape(), x.strides(), shape);
    HPT_CHECK(st, "op 'view': ", desc(x), " with strides ", shape_str(x.strides()), " cannot be viewed as ",
              shape_str(shape), "; use reshape() (which copies)");
    Tensor out = make_view(x, shape, *st, x.offset());
    if (should_record({x})) record(OpId::view, {x}, {out});
    return out;
}

}  // namespace

Tensor Tensor::view(const Shape& s) const {
    check_defined("view", {*this});
    return recorded_view(*this, infer_shape(s, numel(), "view", shape()));
}

Tensor Tensor::reshape(const Shape& s) const {
    check_defined("reshape", {*this});
    const Shape shape = infer_shape(s, numel(), "reshape", this->shape());
    if (view_strides(this->shape(), strides(), shape)) return recorded_view(*this, shape);
    return contiguous().view(shape);
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
    check_defined("flatten", {*this});
    if (dim() == 0) return reshape({1});
    start = wrap_dim(start, dim(), "flatten");
    end = wrap_dim(end, dim(), "flatten");
    HPT_CHECK(start <= end, "op 'flatten': start dim ", start, " after end dim ", end);
    Shape s(shape().begin(), shape().begin() + start);
    int64_t n = 1;
    for (int64_t d = start; d <= end; ++d) n *= shape()[size_t(d)];
    s.push_back(n);
    s.insert(s.end(), shape().begin() + end + 1, shape().end());
    return reshape(s);
}

Tensor Tensor::squeeze(int64_t d) const {
    check_defined("squeeze", {*this});
    d = wrap_dim(d, dim(), "squeeze");
    if (dim() == 0 || shape()[size_t(d)] != 1) return *this;
    Shape s = shape();
    s.erase(s.begin() + d);
    return view(s);
}

Tensor Tensor::unsqueeze(int64_t d) const {
    check_defined("unsqueeze", {*this});
    d = wrap_dim(d, dim() + 1, "unsqueeze");
    Shape s = shape();
    s.insert(s.begin() + d, 1);
    return view(s);
}

std::vector<Tensor> backward_view(const BackwardCtx& c) { return {c.grad_out[0].reshape(c.inputs[0].shape)}; }

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
    check_defined("permute", {*this});
    HPT_CHECK(int64_t(dims.size()) == dim(), "op 'permute': ", dims.size(), " dims given for ", desc(*this));
    PermuteAttrs a;
    std::vector<bool> seen(dims.size(), false);
    Shape s, st;
    for (int64_t d : dims) {
        d = wrap_dim(d, dim(), "permute");
        HPT_CHECK(!seen[size_t(d)], "op 'permute': dim ", d, " repeated");
        seen[size_t(d)] = true;
        a.dims.push_back(d);
        s.push_back(shape()[size_t(d)]);
        st.push_back(strides()[size_t(d)]);
    }
    Tensor out = make_view(*this, s, st, offset());
    if (should_record({*this})) record(OpId::permute, {*this}, {out}, keep(a));
    return out;
}

Tensor Tensor::transpose(int64_t a, int64_t b) const {
    check_defined("transpose", {*this});
    if (dim() == 0) {  // dims 0 and -1 of a 0-dim tensor: nothing to swap
        wrap_dim(a, 0, "transpose");
        wrap_dim(b, 0, "transpose");
        return *this;
    }
    std::vector<int64_t> p(static_cast<size_t>(this->dim()));
    std::iota(p.begin(), p.end(), 0);
    std::swap(p[size_t(wrap_dim(a, dim(), "transpose"))], p[size_t(wrap_dim(b, dim(), "transpose"))]);
    return permute(p);
}

std::vector<Tensor> backward_permute(const BackwardCtx& c) {
    const auto& dims = c.attr<PermuteAttrs>().dims;
    std::vector<int64_t> inv(dims.size());
    for (size_t i = 0; i < dims.size(); ++i) inv[size_t(dims[i])] = int64_t(i);
    return {c.grad_out[0].permute(inv)};
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
    check_defined("slice", {*this});
    HPT_CHECK(dim() >= 1, "op 'slice' on a 0-dim tensor ", desc(*this));
    d = wrap_dim(d, dim(), "slice");
    HPT_CHECK(step >= 1, "op 'slice': step ", step, " must be positive");
    const int64_t n = shape()[size_t(d)];
    auto clampi = [n](int64_t i) { return std::min(std::max(i < 0 ? i + n : i, int64_t(0)), n); };
    start = clampi(start);
    end = std::max(clampi(end), start);
    Shape s = shape(), st = strides();
    s[size_t(d)] = (end - start + step - 1) / step;
    st[size_t(d)] *= step;
    Tensor out = make_view(*this, s, st, offset() + start * strides()[size_t(d)]);
    if (should_record({*this})) record(OpId::slice, {*this}, {out}, keep(SliceAttrs{d, start, end, step}));
    return out;
}

Tensor Tensor::select(int64_t d, int64_t index) const {
    check_defined("select", {*this});
    HPT_CHECK(dim() >= 1, "op 'select' on a 0-dim tensor ", desc(*this));
    d = wrap_dim(d, dim(), "select");
    const int64_t n = shape()[size_t(d)];
    HPT_CHECK(index >= -n && index < n, "op 'select': index ", index, " out of range for dim ", d, " of ",
              desc(*this));
    if (index < 0) index += n;
    return slice(d, index, index + 1).squeeze(d);
}

std::vector<Tensor> backward_slice(const BackwardCtx& c) {
    const SliceAttrs& a = c.attr<SliceAttrs>();
    const Tensor& g = c.grad_out[0];
    Tensor gi = zeros(c.inputs[0].shape, g.dtype(), g.device());
    gi.slice(a.dim, a.start, a.end, a.step).copy_(g);
    return {gi};
}

Tensor Tensor::expand(const Shape& target) const {
    check_defined("expand", {*this});
    HPT_CHECK(target.size() >= shape().size(), "op 'expand': ", desc(*this), " cannot expand to fewer dims ",
              shape_str(target));
    const size_t lead = target.size() - shape().size();
    Shape s(target.size()), st(target.size());
    for (size_t i = 0; i < target.size(); ++i) {
        if (i < lead) {
            HPT_CHECK(target[i] >= 0, "op 'expand': size -1 not allowed for a new leading dim in ", shape_str(target));
            s[i] = target[i];
            st[i] = 0;
            continue;
        }
        const int64_t have = shape()[i - lead];
        const int64_t want = target[i] == -1 ? have : target[i];
        HPT_CHECK(want >= 0 && (have == want || have == 1), "op 'expand': ", desc(*this), " cannot expand to ",
                  shape_str(target));
        s[i] = want;
        st[i] = have == want ? strides()[i - lead] : 0;
    }
    Tensor out = make_view(*this, s, st, offset());
    if (should_record({*this})) record(OpId::expand, {*this}, {out});
    return out;
}

std::vector<Tensor> backward_expand(const BackwardCtx& c) { return {sum_to(c.grad_out[0], c.inputs[0].shape)}; }

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
    check_defined("split", {x});
    HPT_CHECK(x.dim() >= 1, "op 'split' on a 0-dim tensor ", desc(x));
    dim = wrap_dim(dim, x.dim(), "split");
    int64_t total = 0;
    for (int64_t s : sizes) {
        HPT_CHECK(s >= 0, "op 'split': negative size ", s);
        total += s;
    }
    HPT_CHECK(total == x.size(dim), "op 'split': sizes add up to ", total, " but dim ", dim, " of ", desc(x),
              " has ", x.size(dim));
    std::vector<Tensor> parts;
    int64_t at = 0;
    for (int64_t s : sizes) {
        parts.push_back(x.slice(dim, at, at + s));
        at += s;
    }
    return parts;
}

std::vector<Tensor> split(const Tensor& x, int64_t size, int64_t dim) {
    check_defined("split", {x});
    HPT_CHECK(x.dim() >= 1, "op 'split' on a 0-dim tensor ", desc(x));
    HPT_CHECK(size >= 1, "op 'split': chunk size ", size, " must be positive");
    const int64_t n = x.size(dim);
    std::vector<int64_t> sizes;
    for (int64_t at = 0; at < n; at += size) sizes.push_back(std::min(size, n - at));
    return split(x, sizes, dim);
}

}  // namespace hpt
