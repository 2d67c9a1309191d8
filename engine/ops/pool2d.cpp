// Front-ends and backward formulas of max_pool2d, avg_pool2d and adaptive_avg_pool2d (NCHW).
#include "engine/autograd/record.h"
#include "engine/ops/op_utils.h"
#include "engine/ops/ops.h"
#include <cstdint>

namespace hpt {

namespace {

Shape pool_shape(const char* op, const Tensor& x, const Pool2dAttrs& p) {
    check_defined(op, {x});
    check_floating(op, x);
    check_rank(op, x, 4, "input (N, C, H, W)");
    Shape s = x.shape();
    for (int i = 0; i < 2; ++i) {
        HPT_CHECK(p.kernel[i] >= 1 && p.stride[i] >= 1 && p.padding[i] >= 0 && 2 * p.padding[i] <= p.kernel[i],
                  "op '", op, "': bad kernel ", p.kernel[i], ", stride ", p.stride[i], " or padding ", p.padding[i],
                  " (padding may be at most half the kernel)");
        // Checked before dividing: C++ division truncates toward zero, so a negative room divided
        // by a stride > 1 would wrongly give one output.
        const int64_t room = x.size(2 + i) + 2 * p.padding[i] - p.kernel[i];
        HPT_CHECK(room >= 0, "op '", op, "': input ", desc(x), " is smaller than the kernel ", p.kernel[0], "x",
                  p.kernel[1], " with padding ", p.padding[0], "x", p.padding[1]);
        const int64_t out = room / p.stride[i] + 1;
        s[size_t(2 + i)] = out;
    }
    return s;
}

}  // namespace

Tensor max_pool2d(const Tensor& x, const Pool2dAttrs& p) {
    const Shape s = pool_shape("max_pool2d", x, p);
    Tensor y = empty(s, x.dtype(), x.device());
    Tensor idx = empty(s, DType::i64, x.device());
    run_kernel(OpId::max_pool2d, {x.contiguous()}, {y, idx}, &p);
    if (should_record({x})) record(OpId::max_pool2d, {x}, {y, idx}, keep(p), {idx});
    return y;
}

std::vector<Tensor> backward_max_pool2d(const BackwardCtx& c) {
    const Tensor g = c.grad_out[0].contiguous();
    Tensor gx = empty(c.inputs[0].shape, g.dtype(), g.device());
    run_kernel(OpId::max_pool2d_backward, {g, c.saved[0]}, {gx}, c.attrs);
    return {gx};
}

Tensor avg_pool2d(const Tensor& x, const Pool2dAttrs& p) {
    const Shape s = pool_shape("avg_pool2d", x, p);
    Tensor y = empty(s, x.dtype(), x.device());
    run_kernel(OpId::avg_pool2d, {x.contiguous()}, {y}, &p);
    if (should_record({x})) record(OpId::avg_pool2d, {x}, {y}, keep(p));
    return y;
}

std::vector<Tensor> backward_avg_pool2d(const BackwardCtx& c) {
    const Tensor g = c.grad_out[0].contiguous();
    Tensor gx = empty(c.inputs[0].shape, g.dtype(), g.device());
    run_kernel(OpId::avg_pool2d_backward, {g}, {gx}, c.attrs);
    return {gx};
}

Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w) {
    check_defined("adaptive_avg_pool2d", {x});
    check_floating("adaptive_avg_pool2d", x);
    check_rank("adaptive_avg_pool2d", x, 4, "input (N, C, H, W)");
    HPT_CHECK(out_h >= 1 && out_w >= 1, "op 'adaptive_avg_pool2d': output size ", out_h, "x", out_w,
              " must be positive");
    HPT_CHECK(x.size(2) >= 1 && x.size(3) >= 1, "op 'adaptive_avg_pool2d': input ", desc(x),
              " has an empty plane (every output bin needs at least one input)");
    Tensor y = empty({x.size(0), x.size(1), out_h, out_w}, x.dtype(), x.device());
    run_kernel(OpId::adaptive_avg_pool2d, {x.contiguous()}, {y});
    if (should_record({x})) record(OpId::adaptive_avg_pool2d, {x}, {y});
    return y;
}

std::vector<Tensor> backward_adaptive_avg_pool2d(const BackwardCtx& c) {
    const Tensor g = c.grad_out[0].contiguous();
    Tensor gx = empty(c.inputs[0].shape, g.dtype(), g.device());
    run_kernel(OpId::adaptive_avg_pool2d_backward, {g}, {gx});
    return {gx};
}

}  // namespace hpt
