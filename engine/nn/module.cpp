#include "engine/nn/module.h"

#include "engine/autograd/grad_mode.h"
#include "engine/ops/op_utils.h"
#include <cstdint>

namespace hpt::nn {

namespace {
constexpr int64_t kAlign = 16;  // elements: keeps every parameter 64-byte aligned in f32

// Points `t`'s own TensorImpl at a region of `flat` (every holder of `t` sees the move).
void repoint(const Tensor& t, const Tensor& flat, int64_t offset) {
    TensorImpl* impl = t.impl();
    impl->storage = flat.storage();
    impl->offset = flat.offset() + offset;
    impl->strides = contiguous_strides(impl->shape);
}
}  // namespace

Tensor& Module::register_parameter(const std::string& name, Tensor value) {
    HPT_CHECK(value.defined() && is_floating(value.dtype()), kind(), ": parameter '", name, "' must be a floating tensor");
    HPT_CHECK(!is_flat(), kind(), ": parameter '", name, "' registered after flatten()");
    value.requires_grad_(true);
    params_.emplace_back(name, value);
    return params_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor value) {
    buffers_.emplace_back(name, value);
    return buffers_.back().second;
}

void Module::collect(const std::string& prefix, bool params, std::vector<std::pair<std::string, Tensor>>& out) const {
    for (const auto& [n, t] : params ? params_ : buffers_) out.emplace_back(prefix + n, t);
    for (const auto& [n, m] : children_) m->collect(prefix + n + ".", params, out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
    std::vector<std::pair<std::string, Tensor>> out;
    collect("", true, out);
    return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
    std::vector<std::pair<std::string, Tensor>> out;
    collect("", false, out);
    return out;
}

void Module::collect_state(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const {
    for (const auto& [n, t] : params_) out.emplace_back(prefix + n, t);
    for (const auto& [n, t] : buffers_) out.emplace_back(prefix + n, t);
    for (const auto& [n, m] : children_) m->collect_state(prefix + n + ".", out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_state() const {
    std::vector<std::pair<std::string, Tensor>> out;
    collect_state("", out);
    return out;
}

std::vector<Tensor> Module::parameters() const {
    std::vector<Tensor> out;
    for (auto& [n, t] : named_parameters()) out.push_back(t);
    return out;
}

int64_t Module::num_parameters() const {
    int64_t n = 0;
    for (const Tensor& t : parameters()) n += t.numel();
    return n;
}

void Module::train(bool on) {
    training_ = on;
    for (auto& [n, m] : children_) m->train(on);
}

void Module::flatten(Device device) {
    HPT_CHECK(!is_flat(), kind(), ": flatten() called twice");
    const auto params = named_parameters();
    HPT_CHECK(!params.empty(), kind(), ": flatten() on a module without parameters");
    const DType dt = params[0].second.dtype();
    int64_t total = 0;
    for (const auto& [name, t] : params) {
        HPT_CHECK(t.dtype() == dt, kind(), ": parameter '", name, "' is ", dtype_name(t.dtype()), " but '",
                  params[0].first, "' is ", dtype_name(dt), "; one flat buffer needs one dtype");
        total = (total + kAlign - 1) / kAlign * kAlign + t.numel();
    }
    NoGradGuard ng;
    flat_params_ = zeros({total}, dt, device);
    flat_grads_ = zeros({total}, dt, device);
    int64_t off = 0;
    for (const auto& [name, t] : params) {
        off = (off + kAlign - 1) / kAlign * kAlign;
        flat_params_.slice(0, off, off + t.numel()).view(t.shape()).copy_(t);
        repoint(t, flat_params_, off);
        t.set_grad(flat_grads_.slice(0, off, off + t.numel()).view(t.shape()));
        off += t.numel();
    }
    // Buffers move too; they keep separate storage (they are not trained).
    for (const auto& [name, b] : named_buffers()) {
        if (b.device() == device) continue;
        const Tensor moved = b.to(device);
        TensorImpl* impl = b.impl();
        impl->storage = moved.storage();
        impl->offset = 0;
        impl->strides = contiguous_strides(impl->shape);
    }
}

std::vector<std::pair<int64_t, int64_t>> Module::trainable_ranges() const {
    HPT_CHECK(is_flat(), kind(), ": trainable_ranges() needs flatten() first");
    // Parameters sit in the flat buffer in named_parameters() order. Consecutive trainable ones are
    // merged across the alignment padding between them: padding is zero in both buffers and stays
    // zero under SGD (zero gradient, zero weight).
    std::vector<std::pair<int64_t, int64_t>> r;
    bool prev_trainable = false;
    for (const Tensor& t : parameters()) {
        const int64_t b = t.offset() - flat_params_.offset(), e = b + t.numel();
        if (t.requires_grad()) {
            if (prev_trainable) {
                r.back().second = e;
            } else {
                r.emplace_back(b, e);
            }
        }
        prev_trainable = t.requires_grad();
    }
    return r;
}

void Module::zero_grad() {
    NoGradGuard ng;
    if (is_flat()) {
        flat_grads_.zero_();
        return;
    }
    for (const Tensor& t : parameters())
        if (t.grad().defined()) t.set_grad(Tensor());
}

void Module::copy_state_from(const Module& other) {
    NoGradGuard ng;
    auto mine = named_parameters(), theirs = other.named_parameters();
    auto mb = named_buffers(), tb = other.named_buffers();
    HPT_CHECK(mine.size() == theirs.size() && mb.size() == tb.size(), kind(), ": copy_state_from a module with ",
              theirs.size(), " parameters and ", tb.size(), " buffers into one with ", mine.size(), " and ", mb.size());
    mine.insert(mine.end(), mb.begin(), mb.end());
    theirs.insert(theirs.end(), tb.begin(), tb.end());
    for (size_t i = 0; i < mine.size(); ++i) {
        HPT_CHECK(mine[i].first == theirs[i].first && mine[i].second.shape() == theirs[i].second.shape(), kind(),
                  ": copy_state_from: '", theirs[i].first, "' ", desc(theirs[i].second), " does not fit '",
                  mine[i].first, "' ", desc(mine[i].second));
        mine[i].second.copy_(theirs[i].second);
    }
}

}  // namespace hpt::nn
