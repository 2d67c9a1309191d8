// Tensor: a strided view of a Storage, plus the autograd state of that view.
//
// A Tensor is a cheap handle (shared_ptr to a TensorImpl). Views (reshape, permute, slice, expand)
// share the storage and differ in shape, strides and offset; all sizes and strides are in elements.
// Views are differentiable and recorded by autograd like any op. In-place methods (fill_, copy_,
// add_) are not recorded: they are for optimizers, buffers and gradient accumulation, and they
// refuse to modify a tensor that autograd is tracking while grad mode is on.
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/device.h"
#include "engine/core/dtype.h"
#include "engine/core/error.h"
#include "engine/core/storage.h"

namespace hpt {

using Shape = std::vector<int64_t>;
struct Node;
struct TensorImpl;

class Tensor {
public:
    Tensor() = default;  // undefined: no storage, no shape
    explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

    bool defined() const { return impl_ != nullptr; }
    TensorImpl* impl() const { return impl_.get(); }
    const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
    bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

    // ---- metadata
    const Shape& shape() const;
    const Shape& strides() const;
    int64_t dim() const;
    int64_t size(int64_t d) const;  // negative d counts from the end
    int64_t stride(int64_t d) const;
    int64_t numel() const;
    int64_t offset() const;
    DType dtype() const;
    Device device() const;
    size_t element_size() const { return dtype_size(dtype()); }
    bool is_contiguous() const;
    const std::shared_ptr<Storage>& storage() const;

    // Address of element [0,...,0]; a device pointer for device tensors.
    void* data_ptr() const;
    template <class T> T* data() const {
        HPT_CHECK(dtype() == dtype_of<T>::value, "Tensor::data<", dtype_name(dtype_of<T>::value),
                  ">() on a tensor of dtype ", dtype_name(dtype()));
        return static_cast<T*>(data_ptr());
    }

    // ---- views (differentiable, share storage)
    Tensor reshape(const Shape& s) const;  // a view when strides allow, else a copy
    Tensor view(const Shape& s) const;     // must be expressible as a view; throws otherwise
    Tensor flatten(int64_t start = 0, int64_t end = -1) const;
    Tensor permute(const std::vector<int64_t>& dims) const;
    Tensor transpose(int64_t a, int64_t b) const;
    Tensor t() const { return transpose(0, 1); }
    Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
    Tensor select(int64_t dim, int64_t index) const;
    Tensor narrow(int64_t dim, int64_t start, int64_t length) const { return slice(dim, start, start + length); }
    Tensor squeeze(int64_t dim) const;
    Tensor unsqueeze(int64_t dim) const;
    Tensor expand(const Shape& s) const;

    // ---- copies (differentiable)
    Tensor contiguous() const;  // itself when already contiguous
    Tensor clone() const;
    Tensor to(Device d) const;
    Tensor to(DType t) const;
    Tensor cpu() const { return to(Device::cpu()); }

    // A tensor sharing this one's data that autograd does not track.
    Tensor detach() const;

    // ---- autograd
    bool requires_grad() const;
    const Tensor& requires_grad_(bool on = true) const;
    const Tensor& grad() const;
    void set_grad(const Tensor& g) const;
    bool is_leaf() const;
    const std::shared_ptr<Node>& grad_fn() const;
    // Backpropagates from this tensor. Without `grad` the tensor must hold one element (grad 1).
    void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;

    // ---- host access
    template <class T> T item() const;                // numel() == 1, converted to T
    template <class T> std::vector<T> to_vector() const;  // row-major order, converted to T

    // ---- in place, not recorded by autograd. Const because a Tensor is a handle: they change the
    // data it points to, not the handle.
    const Tensor& fill_(double value) const;
    const Tensor& zero_() const { return fill_(0.0); }
    const Tensor& copy_(const Tensor& src) const;  // broadcasts src; converts dtype; may cross devices
    const Tensor& add_(const Tensor& other, double alpha = 1.0) const;
    const Tensor& mul_(double factor) const;

    std::string str(int64_t max_elements = 16) const;  // "f32[2, 3] cpu {1, 2, ...}"

private:
    std::shared_ptr<TensorImpl> impl_;
};

struct TensorImpl {
    std::shared_ptr<Storage> storage;
    int64_t offset = 0;
    Shape shape;
    Shape strides;
    DType dtype = DType::f32;

    bool requires_grad = false;
    Tensor grad;
    std::shared_ptr<Node> grad_fn;  // set on outputs of recorded ops
    int output_nr = 0;              // which output of grad_fn this is
    std::weak_ptr<Node> grad_accumulator;  // a leaf's accumulator, alive while a graph uses it
    // Called by a leaf's AccumulateGrad right after it has added this backward's gradient into
    // `grad` (once per backward: the engine sums all uses first). Data parallelism hangs its bucket
    // all-reduce here, so communication starts while the rest of backward still runs.
    std::function<void()> post_accumulate_hook;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);
std::ostream& operator<<(std::ostream& os, DType t);
std::ostream& operator<<(std::ostream& os, const Device& d);

// ---- shape helpers
int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);
int64_t wrap_dim(int64_t d, int64_t ndim, const char* op);  // -1 -> ndim-1, checks range
// Shape both operands broadcast to (numpy rules); throws naming `op` when incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// ---- factories
Tensor empty(const Shape& s, DType t = DType::f32, Device d = Device::cpu());
Tensor zeros(const Shape& s, DType t = DType::f32, Device d = Device::cpu());
Tensor ones(const Shape& s, DType t = DType::f32, Device d = Device::cpu());
Tensor full(const Shape& s, double value, DType t = DType::f32, Device d = Device::cpu());
Tensor scalar_tensor(double value, DType t = DType::f32, Device d = Device::cpu());  // 0-dim
Tensor arange(int64_t n, DType t = DType::i64, Device d = Device::cpu());
Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
// Wraps memory the caller keeps alive (no copy). For host buffers read from files, etc.
Tensor from_blob(void* data, const Shape& s, DType t, Device d = Device::cpu());

template <class T>
Tensor from_vector(const std::vector<T>& v, const Shape& s, Device d = Device::cpu());
template <class T>
Tensor from_vector(const std::vector<T>& v) { return from_vector(v, {int64_t(v.size())}); }

}  // namespace hpt
