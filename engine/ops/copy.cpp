// Copies: contiguous, clone, dtype and device conversion (differentiable), and in-place copy_.
#include "engine/autograd/record.h"
#include "engine/ops/op_utils.h"
#include "engine/ops/ops.h"

namespace hpt {

namespace {

// The kernel of a copy runs on the device type of its non-CPU side (the one that can reach both).
void copy_into(const Tensor& dst, const Tensor& src) {
    const DeviceType t = dst.device().is_cpu() ? src.device().type : dst.device().type;
    const KernelFn fn = find_kernel(OpId::copy, t);
    HPT_CHECK(fn, "copy from ", src.device().str(), " to ", dst.device().str(),
              ": this build has no ", device_type_name(t), " backend");
    const Tensor s = src.shape() == dst.shape() ? src : src.detach().expand(dst.shape());
    KernelArgs args{OpId::copy, &s, 1, const_cast<Tensor*>(&dst), 1, nullptr};
    fn(args);
}

Tensor copy_to(const Tensor& x, DType t, Device d) {
    Tensor out = empty(x.shape(), t, d);
    copy_into(out, x);
    if (is_floating(t) && should_record({x})) record(OpId::copy, {x}, {out});
    return out;
}

}  // namespace

Tensor Tensor::contiguous() const {
    check_defined("contiguous", {*this});
    return is_contiguous() ? *this : copy_to(*this, dtype(), device());
}

Tensor Tensor::clone() const {
    check_defined("clone", {*this});
    return copy_to(*this, dtype(), device());
}

Tensor Tensor::to(Device d) const {
    check_defined("to", {*this});
    return d == device() ? *this : copy_to(*this, dtype(), d);
}

Tensor Tensor::to(DType t) const {
    check_defined("to", {*this});
    return t == dtype() ? *this : copy_to(*this, t, device());
}

std::vector<Tensor> backward_copy(const BackwardCtx& c) {
    const InputMeta& in = c.inputs[0];
    return {c.grad_out[0].to(in.dtype).to(in.device)};
}

const Tensor& Tensor::copy_(const Tensor& src) const {
    check_defined("copy_", {*this, src});
    HPT_CHECK(!(grad_enabled() && requires_grad()), "in-place 'copy_' on a tensor that requires grad (",
              desc(*this), "); do it under NoGradGuard");
    HPT_CHECK(broadcast_shapes(shape(), src.shape(), "copy_") == shape(), "op 'copy_': source ", desc(src),
              " does not broadcast to destination ", desc(*this));
    copy_into(*this, src);
    storage()->bump_version();
    return *this;
}

}  // namespace hpt
