// Front-end and backward formula of conv2d (NCHW input, OIHW weight, optional bias).
#include "engine/autograd/record.h"
#include "engine/ops/op_utils.h"
#include "engine/ops/ops.h"
#include <cstdint>

namespace hpt {

namespace {
// 0 when the dilated kernel does not fit the padded input. (The numerator is checked first: C++
// division truncates toward zero, so a negative one divided by a stride > 1 would give 1.)
int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
    const int64_t room = in + 2 * p - d * (k - 1) - 1;
    return room < 0 ? 0 : room / s + 1;
}
}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dAttrs& p) {
    check_defined("conv2d", {x, w});
    check_same_dtype("conv2d", {x, w, bias});
    check_floating("conv2d", x);
    check_rank("conv2d", x, 4, "input (N, C, H, W)");
    check_rank("conv2d", w, 4, "weight (O, I/groups, kH, kW)");
    for (int i = 0; i < 2; ++i) {
        HPT_CHECK(p.stride[i] >= 1 && p.dilation[i] >= 1 && p.padding[i] >= 0, "op 'conv2d': bad stride ",
                  p.stride[i], ", padding ", p.padding[i], " or dilation ", p.dilation[i]);
    }
    HPT_CHECK(p.groups >= 1 && x.size(1) % p.groups == 0 && w.size(0) % p.groups == 0, "op 'conv2d': groups=",
              p.groups, " does not divide the channels of input ", desc(x), " and weight ", desc(w));
    HPT_CHECK(w.size(1) * p.groups == x.size(1), "op 'conv2d': input ", desc(x), " has ", x.size(1),
              " channels but weight ", desc(w), " expects ", w.size(1) * p.groups, " (groups=", p.groups, ")");
    HPT_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == w.size(0)), "op 'conv2d': bias ", desc(bias),
              " does not fit weight ", desc(w));
    const int64_t oh = conv_out(x.size(2), w.size(2), p.stride[0], p.padding[0], p.dilation[0]);
    const int64_t ow = conv_out(x.size(3), w.size(3), p.stride[1], p.padding[1], p.dilation[1]);
    HPT_CHECK(oh >= 1 && ow >= 1, "op 'conv2d': input ", desc(x), " is smaller than the (dilated) kernel ",
              desc(w), " with padding ", p.padding[0], "x", p.padding[1]);
    const Device d = common_device("conv2d", {x, w, bias});
    Tensor y = empty({x.size(0), w.size(0), oh, ow}, x.dtype(), d);
    const Tensor xc = x.contiguous(), wc = w.contiguous();
    run_kernel(OpId::conv2d, {xc, wc, bias.defined() ? bias.contiguous() : bias}, {y}, &p);
    if (should_record({x, w, bias})) record(OpId::conv2d, {x, w, bias}, {y}, keep(p), {xc, wc});
    return y;
}

std::vector<Tensor> backward_conv2d(const BackwardCtx& c) {
    const Tensor &x = c.saved[0], &w = c.saved[1];
    const Tensor g = c.grad_out[0].contiguous();
    Tensor gx = c.needs_grad(0) ? empty(x.shape(), x.dtype(), x.device()) : Tensor();
    Tensor gw = c.needs_grad(1) ? empty(w.shape(), w.dtype(), w.device()) : Tensor();
    Tensor gb = c.needs_grad(2) ? empty({w.size(0)}, w.dtype(), w.device()) : Tensor();
    run_kernel(OpId::conv2d_backward, {g, x, w}, {gx, gw, gb}, c.attrs);
    return {gx, gw, gb};
}

}  // namespace hpt
