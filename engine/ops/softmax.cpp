// Front-ends and backward formulas of softmax, log_softmax, cross_entropy and l2_normalize.
#include "engine/autograd/record.h"
#include "engine/ops/op_utils.h"
#include "engine/ops/ops.h"
#include <cstdint>

namespace hpt {

namespace {
Tensor along_dim(OpId op, const Tensor& x, int64_t dim) {
    check_defined(op_name(op), {x});
    check_floating(op_name(op), x);
    DimAttrs a{wrap_dim(dim, x.dim(), op_name(op)), false};
    Tensor y = empty(x.shape(), x.dtype(), x.device());
    run_kernel(op, {x.contiguous()}, {y}, &a);
    if (should_record({x})) record(op, {x}, {y}, keep(a), {y});
    return y;
}

Tensor backward_along_dim(OpId kernel, const BackwardCtx& c) {
    const Tensor g = c.grad_out[0].contiguous();
    Tensor gx = empty(g.shape(), g.dtype(), g.device());
    run_kernel(kernel, {g, c.saved[0]}, {gx}, c.attrs);
    return gx;
}
}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return along_dim(OpId::softmax, x, dim); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return along_dim(OpId::log_softmax, x, dim); }

std::vector<Tensor> backward_softmax(const BackwardCtx& c) { return {backward_along_dim(OpId::softmax_backward, c)}; }
std::vector<Tensor> backward_log_softmax(const BackwardCtx& c) {
    return {backward_along_dim(OpId::log_softmax_backward, c)};
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target) {
    check_defined("cross_entropy", {logits, target});
    check_floating("cross_entropy", logits);
    check_rank("cross_entropy", logits, 2, "logits (N, C)");
    check_dtype("cross_entropy", target, DType::i64, "target");
    check_rank("cross_entropy", target, 1, "target (N)");
    HPT_CHECK(target.size(0) == logits.size(0), "op 'cross_entropy': ", logits.size(0), " rows of logits ",
              desc(logits), " but ", target.size(0), " targets");
    HPT_CHECK(logits.size(0) > 0 && logits.size(1) > 0, "op 'cross_entropy': empty logits ", desc(logits));
    const Device d = common_device("cross_entropy", {logits, target});
    Tensor loss = empty({}, logits.dtype(), d);
    Tensor lse = empty({logits.size(0)}, logits.dtype(), d);
    const Tensor lc = logits.contiguous(), tc = target.contiguous();
    run_kernel(OpId::cross_entropy, {lc, tc}, {loss, lse});
    if (should_record({logits})) record(OpId::cross_entropy, {logits, target}, {loss, lse}, nullptr, {lc, tc, lse});
    return loss;
}

std::vector<Tensor> backward_cross_entropy(const BackwardCtx& c) {
    const Tensor &logits = c.saved[0], &target = c.saved[1], &lse = c.saved[2];
    Tensor gx = empty(logits.shape(), logits.dtype(), logits.device());
    run_kernel(OpId::cross_entropy_backward, {c.grad_out[0], logits, target, lse}, {gx});
    return {gx, Tensor()};
}

Tensor l2_normalize(const Tensor& x, int64_t dim, double eps) {
    check_defined("l2_normalize", {x});
    check_floating("l2_normalize", x);
    HPT_CHECK(eps > 0, "op 'l2_normalize': eps must be positive, got ", eps);
    L2NormAttrs a{wrap_dim(dim, x.dim(), "l2_normalize"), eps};
    const Tensor xc = x.contiguous();
    Tensor y = empty(x.shape(), x.dtype(), x.device());
    run_kernel(OpId::l2_normalize, {xc}, {y}, &a);
    if (should_record({x})) record(OpId::l2_normalize, {x}, {y}, keep(a), {xc, y});
    return y;
}

std::vector<Tensor> backward_l2_normalize(const BackwardCtx& c) {
    const Tensor g = c.grad_out[0].contiguous();
    Tensor gx = empty(g.shape(), g.dtype(), g.device());
    run_kernel(OpId::l2_normalize_backward, {g, c.saved[0], c.saved[1]}, {gx}, c.attrs);
    return {gx};
}

}  // namespace hpt
