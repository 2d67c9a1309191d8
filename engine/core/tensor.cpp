// Tensor metadata, factories, host access, in-place methods and printing.
// Views live in engine/ops/views.cpp and copies in engine/ops/copy.cpp.
#include "engine/core/tensor.h"

#include <cstdint>
#include <cmath>
#include <iomanip>
#include <limits>
#include <ostream>
#include <sstream>

#include "engine/autograd/grad_mode.h"
#include "engine/autograd/node.h"
#include "engine/ops/attrs.h"
#include "engine/ops/ops.h"
#include "engine/ops/registry.h"

namespace hpt {

namespace {
const Shape kEmptyShape;
const std::shared_ptr<Node> kNoNode;
const std::shared_ptr<Storage> kNoStorage;
const Tensor kUndefined;

TensorImpl& need(const Tensor& t, const char* what) {
    HPT_CHECK(t.defined(), what, " on an undefined tensor");
    return *t.impl();
}

void check_inplace(const Tensor& t, const char* op) {
    need(t, op);
    HPT_CHECK(!(grad_enabled() && t.requires_grad()), "in-place '", op,
              "' on a tensor that requires grad (", dtype_name(t.dtype()), shape_str(t.shape()),
              "): autograd does not record in-place ops; do it under NoGradGuard or on a detached tensor");
}
}  // namespace

// ---------------------------------------------------------------- metadata

const Shape& Tensor::shape() const { return impl_ ? impl_->shape : kEmptyShape; }
const Shape& Tensor::strides() const { return impl_ ? impl_->strides : kEmptyShape; }
int64_t Tensor::dim() const { return int64_t(shape().size()); }
// wrap_dim accepts dims 0 and -1 for a 0-dim tensor (as reductions do); size/stride have none.
int64_t Tensor::size(int64_t d) const {
    HPT_CHECK(dim() > 0, "size(", d, ") of a 0-dim tensor (shape [])");
    return shape()[size_t(wrap_dim(d, dim(), "size"))];
}
int64_t Tensor::stride(int64_t d) const {
    HPT_CHECK(dim() > 0, "stride(", d, ") of a 0-dim tensor (shape [])");
    return strides()[size_t(wrap_dim(d, dim(), "stride"))];
}
int64_t Tensor::numel() const { return impl_ ? shape_numel(impl_->shape) : 0; }
int64_t Tensor::offset() const { return impl_ ? impl_->offset : 0; }
DType Tensor::dtype() const { return need(*this, "dtype()").dtype; }
Device Tensor::device() const {
    const TensorImpl& i = need(*this, "device()");
    return i.storage ? i.storage->device() : Device::cpu();
}
const std::shared_ptr<Storage>& Tensor::storage() const { return impl_ ? impl_->storage : kNoStorage; }

bool Tensor::is_contiguous() const {
    const TensorImpl& i = need(*this, "is_contiguous()");
    int64_t expected = 1;
    for (int64_t d = int64_t(i.shape.size()) - 1; d >= 0; --d) {
        if (i.shape[d] == 1) continue;
        if (i.strides[d] != expected) return false;
        expected *= i.shape[d];
    }
    return true;
}

void* Tensor::data_ptr() const {
    const TensorImpl& i = need(*this, "data_ptr()");
    if (!i.storage || !i.storage->data()) return nullptr;
    return static_cast<char*>(i.storage->data()) + i.offset * int64_t(dtype_size(i.dtype));
}

// ---------------------------------------------------------------- autograd accessors

bool Tensor::requires_grad() const { return impl_ && impl_->requires_grad; }

const Tensor& Tensor::requires_grad_(bool on) const {
    TensorImpl& i = need(*this, "requires_grad_()");
    HPT_CHECK(!on || is_floating(i.dtype), "requires_grad on a ", dtype_name(i.dtype),
              " tensor: only floating-point tensors can have gradients");
    HPT_CHECK(on || !i.grad_fn, "requires_grad_(false) on a non-leaf tensor; use detach()");
    i.requires_grad = on;
    return *this;
}

const Tensor& Tensor::grad() const { return impl_ ? impl_->grad : kUndefined; }

void Tensor::set_grad(const Tensor& g) const {
    TensorImpl& i = need(*this, "set_grad()");
    HPT_CHECK(!g.defined() || g.shape() == i.shape, "set_grad: gradient shape ", shape_str(g.shape()),
              " differs from the tensor's ", shape_str(i.shape));
    i.grad = g;
}

bool Tensor::is_leaf() const { return !impl_ || !impl_->grad_fn; }
const std::shared_ptr<Node>& Tensor::grad_fn() const { return impl_ ? impl_->grad_fn : kNoNode; }

void Tensor::backward(const Tensor& grad, bool retain_graph) const { run_backward(*this, grad, retain_graph); }

Tensor Tensor::detach() const {
    const TensorImpl& i = need(*this, "detach()");
    auto d = std::make_shared<TensorImpl>();
    d->storage = i.storage;
    d->offset = i.offset;
    d->shape = i.shape;
    d->strides = i.strides;
    d->dtype = i.dtype;
    return Tensor(d);
}

// ---------------------------------------------------------------- host access

namespace {
template <class Out>
Out element_as(const Tensor& host, int64_t i) {
    Out r{};
    HPT_DISPATCH_ALL(host.dtype(), "item", [&] {
        using C = typename compute_type<scalar_t>::type;
        r = static_cast<Out>(static_cast<C>(static_cast<const scalar_t*>(host.data_ptr())[i]));
    });
    return r;
}
}  // namespace

template <class T>
T Tensor::item() const {
    HPT_CHECK(numel() == 1, "item() on a tensor with ", numel(), " elements (shape ", shape_str(shape()), ")");
    Tensor h = to(Device::cpu()).contiguous();
    return element_as<T>(h, 0);
}

template <class T>
std::vector<T> Tensor::to_vector() const {
    need(*this, "to_vector()");
    NoGradGuard ng;
    Tensor h = to(Device::cpu()).contiguous();
    std::vector<T> v(size_t(h.numel()));
    for (int64_t i = 0; i < h.numel(); ++i) v[size_t(i)] = element_as<T>(h, i);
    return v;
}

#define HPT_INSTANTIATE_HOST(T)                       \
    template T Tensor::item<T>() const;               \
    template std::vector<T> Tensor::to_vector<T>() const;
HPT_INSTANTIATE_HOST(float)
HPT_INSTANTIATE_HOST(double)
HPT_INSTANTIATE_HOST(uint8_t)
HPT_INSTANTIATE_HOST(int32_t)
HPT_INSTANTIATE_HOST(int64_t)
#undef HPT_INSTANTIATE_HOST

// ---------------------------------------------------------------- in place

const Tensor& Tensor::fill_(double value) const {
    check_inplace(*this, "fill_");
    FillAttrs a{value};
    run_kernel(OpId::fill, {}, {*this}, &a);
    storage()->bump_version();
    return *this;
}

const Tensor& Tensor::add_(const Tensor& other, double alpha) const {
    check_inplace(*this, "add_");
    HPT_CHECK(other.defined(), "add_: undefined operand");
    broadcast_shapes(shape(), other.shape(), "add_");  // validates
    HPT_CHECK(broadcast_shapes(shape(), other.shape(), "add_") == shape(), "add_: operand of shape ",
              shape_str(other.shape()), " does not broadcast to ", shape_str(shape()));
    NoGradGuard ng;
    const Tensor o = alpha == 1.0 ? other : other * alpha;
    run_kernel(OpId::add, {*this, o}, {*this});
    storage()->bump_version();
    return *this;
}

const Tensor& Tensor::mul_(double factor) const {
    check_inplace(*this, "mul_");
    run_kernel(OpId::mul, {*this, scalar_tensor(factor, dtype())}, {*this});
    storage()->bump_version();
    return *this;
}

// ---------------------------------------------------------------- shape helpers

int64_t shape_numel(const Shape& s) {
    int64_t n = 1;
    for (int64_t d : s) n *= d;
    return n;
}

Shape contiguous_strides(const Shape& s) {
    Shape st(s.size());
    int64_t acc = 1;
    for (int64_t d = int64_t(s.size()) - 1; d >= 0; --d) {
        st[size_t(d)] = acc;
        acc *= std::max<int64_t>(s[size_t(d)], 1);
    }
    return st;
}

int64_t wrap_dim(int64_t d, int64_t ndim, const char* op) {
    const int64_t n = std::max<int64_t>(ndim, 1);
    HPT_CHECK(d >= -n && d < n, "op '", op, "': dim ", d, " out of range for a tensor of rank ", ndim);
    return d < 0 ? d + n : d;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
    const size_t n = std::max(a.size(), b.size());
    Shape out(n);
    for (size_t i = 0; i < n; ++i) {
        const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
        const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
        HPT_CHECK(da == db || da == 1 || db == 1, "op '", op, "': shapes ", shape_str(a), " and ",
                  shape_str(b), " do not broadcast");
        out[i] = da == 1 ? db : da;
    }
    return out;
}

// ---------------------------------------------------------------- factories

Tensor empty(const Shape& s, DType t, Device d) {
    for (int64_t v : s) HPT_CHECK(v >= 0, "empty(): negative size in shape ", shape_str(s));
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = std::make_shared<Storage>(size_t(shape_numel(s)) * dtype_size(t), d);
    impl->shape = s;
    impl->strides = contiguous_strides(s);
    impl->dtype = t;
    return Tensor(impl);
}

Tensor full(const Shape& s, double value, DType t, Device d) {
    Tensor r = empty(s, t, d);
    FillAttrs a{value};
    run_kernel(OpId::fill, {}, {r}, &a);
    return r;
}

Tensor zeros(const Shape& s, DType t, Device d) { return full(s, 0.0, t, d); }
Tensor ones(const Shape& s, DType t, Device d) { return full(s, 1.0, t, d); }
Tensor scalar_tensor(double value, DType t, Device d) { return full({}, value, t, d); }
Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.dtype(), t.device()); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }

Tensor arange(int64_t n, DType t, Device d) {
    HPT_CHECK(n >= 0, "arange(", n, "): negative length");
    Tensor h = empty({n}, t, Device::cpu());
    HPT_DISPATCH_ALL(t, "arange", [&] {
        auto* p = h.data<scalar_t>();
        for (int64_t i = 0; i < n; ++i) p[i] = scalar_t(typename compute_type<scalar_t>::type(i));
    });
    return d.is_cpu() ? h : h.to(d);
}

Tensor from_blob(void* data, const Shape& s, DType t, Device d) {
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = std::make_shared<Storage>(data, size_t(shape_numel(s)) * dtype_size(t), d, nullptr);
    impl->shape = s;
    impl->strides = contiguous_strides(s);
    impl->dtype = t;
    return Tensor(impl);
}

template <class T>
Tensor from_vector(const std::vector<T>& v, const Shape& s, Device d) {
    HPT_CHECK(int64_t(v.size()) == shape_numel(s), "from_vector: ", v.size(), " values for shape ", shape_str(s));
    Tensor h = empty(s, dtype_of<T>::value, Device::cpu());
    if (!v.empty()) std::memcpy(h.data_ptr(), v.data(), v.size() * sizeof(T));
    return d.is_cpu() ? h : h.to(d);
}
template Tensor from_vector<float>(const std::vector<float>&, const Shape&, Device);
template Tensor from_vector<double>(const std::vector<double>&, const Shape&, Device);
template Tensor from_vector<bf16>(const std::vector<bf16>&, const Shape&, Device);
template Tensor from_vector<uint8_t>(const std::vector<uint8_t>&, const Shape&, Device);
template Tensor from_vector<int32_t>(const std::vector<int32_t>&, const Shape&, Device);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, const Shape&, Device);

// ---------------------------------------------------------------- printing

std::string Tensor::str(int64_t max_elements) const {
    if (!defined()) return "Tensor(undefined)";
    std::ostringstream os;
    os << dtype_name(dtype()) << shape_str(shape()) << ' ' << device().str();
    if (requires_grad()) os << " requires_grad";
    const int64_t n = numel();
    if (n == 0) return os.str() + " {}";
    NoGradGuard ng;
    const Tensor flat = (n > max_elements ? reshape({n}).slice(0, 0, max_elements) : *this);
    const std::vector<double> v = flat.to_vector<double>();
    os << " {" << std::setprecision(6);
    for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
    if (n > max_elements) os << ", ...";
    os << '}';
    return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }
std::ostream& operator<<(std::ostream& os, DType t) { return os << dtype_name(t); }
std::ostream& operator<<(std::ostream& os, const Device& d) { return os << d.str(); }

}  // namespace hpt
