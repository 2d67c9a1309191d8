// Front-end and backward formula of batchnorm2d, including "ghost" statistics over G equal groups
// of the batch (MoCo's per-GPU shuffle-BN emulated on one device), and the fused residual sum and
// ReLU of a ResNet block's tail.
#include "engine/autograd/record.h"
#include "engine/ops/op_utils.h"
#include "engine/ops/ops.h"
#include <cstdint>

namespace hpt {

Tensor batchnorm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                   const Tensor& running_var, const BatchNormAttrs& p, const Tensor& residual) {
    check_defined("batchnorm2d", {x});
    check_floating("batchnorm2d", x);
    check_rank("batchnorm2d", x, 4, "input (N, C, H, W)");
    check_same_dtype("batchnorm2d", {x, gamma, beta, running_mean, running_var, residual});
    HPT_CHECK(!residual.defined() || residual.shape() == x.shape(), "op 'batchnorm2d': residual ", desc(residual),
              " does not have the shape of input ", desc(x));
    const int64_t C = x.size(1);
    for (const Tensor* t : {&gamma, &beta, &running_mean, &running_var}) {
        HPT_CHECK(!t->defined() || (t->dim() == 1 && t->size(0) == C && t->is_contiguous()), "op 'batchnorm2d': ",
                  desc(*t), " does not match the ", C, " channels of input ", desc(x), " (or is not contiguous)");
    }
    HPT_CHECK(running_mean.defined() == running_var.defined(),
              "op 'batchnorm2d': give both running_mean and running_var or neither");
    HPT_CHECK(p.training || running_mean.defined(), "op 'batchnorm2d': eval mode needs running statistics");
    HPT_CHECK(p.eps > 0, "op 'batchnorm2d': eps must be positive, got ", p.eps);
    const int64_t G = p.training ? p.groups : 1;
    HPT_CHECK(G >= 1 && x.size(0) % G == 0, "op 'batchnorm2d': the batch of ", x.size(0), " in input ", desc(x),
              " cannot be split into ", p.groups, " equal groups");
    HPT_CHECK(!p.training || x.size(0) / G * x.size(2) * x.size(3) > 1, "op 'batchnorm2d': training needs more than one value per channel and group, got ",
              desc(x), " with ", G, " groups");
    const Device d = common_device("batchnorm2d", {x, gamma, beta, running_mean, running_var, residual});
    Tensor y = empty(x.shape(), x.dtype(), d);
    Tensor mean = empty({G, C}, x.dtype(), d), invstd = empty({G, C}, x.dtype(), d);
    const Tensor xc = x.contiguous();
    const Tensor rc = residual.defined() ? residual.contiguous() : Tensor();
    BatchNormAttrs a = p;
    a.groups = G;
    run_kernel(OpId::batchnorm2d, {xc, gamma, beta, running_mean, running_var, rc}, {y, mean, invstd}, &a);
    if (p.training && running_mean.defined()) {
        running_mean.storage()->bump_version();
        running_var.storage()->bump_version();
    }
    if (should_record({x, gamma, beta, residual})) {
        std::vector<Tensor> saved{xc, gamma, mean, invstd};
        if (a.relu) saved.push_back(y);  // the ReLU's mask
        record(OpId::batchnorm2d, {x, gamma, beta, running_mean, running_var, residual}, {y, mean, invstd}, keep(a),
               std::move(saved));
    }
    return y;
}

std::vector<Tensor> backward_batchnorm2d(const BackwardCtx& c) {
    const Tensor &x = c.saved[0], &gamma = c.saved[1], &mean = c.saved[2], &invstd = c.saved[3];
    Tensor g = c.grad_out[0].contiguous();
    // The ReLU's mask: applied by the backward kernel as it reads the gradient (given the output
    // y), unless the residual needs the masked gradient as a tensor of its own.
    Tensor mask_y;
    if (c.attr<BatchNormAttrs>().relu) {
        if (c.needs_grad(5)) {
            Tensor masked = empty(g.shape(), g.dtype(), g.device());
            run_kernel(OpId::relu_backward, {g, c.saved[4]}, {masked});
            g = masked;
        } else {
            mask_y = c.saved[4];
        }
    }
    Tensor gx = c.needs_grad(0) ? empty(x.shape(), x.dtype(), x.device()) : Tensor();
    Tensor gg = c.needs_grad(1) ? empty({x.size(1)}, x.dtype(), x.device()) : Tensor();
    Tensor gbeta = c.needs_grad(2) ? empty({x.size(1)}, x.dtype(), x.device()) : Tensor();
    if (gx.defined() || gg.defined() || gbeta.defined())
        run_kernel(OpId::batchnorm2d_backward, {g, x, gamma, mean, invstd, mask_y}, {gx, gg, gbeta}, c.attrs);
    // The residual entered the sum with weight 1: its gradient is the (masked) output gradient.
    return {gx, gg, gbeta, Tensor(), Tensor(), c.needs_grad(5) ? g : Tensor()};
}

}  // namespace hpt
