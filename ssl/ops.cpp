// Front-ends and backward formula of info_nce, and momentum_update.
#include "ssl/ops.h"

#include "engine/autograd/record.h"
#include "engine/ops/attrs.h"
#include "engine/ops/op_utils.h"

namespace hpt {

Tensor info_nce(const Tensor& q, const Tensor& k, const Tensor& queue, double temperature) {
    check_defined("info_nce", {q, k, queue});
    check_same_dtype("info_nce", {q, k, queue});
    check_floating("info_nce", q);
    check_rank("info_nce", q, 2, "q (N, D)");
    HPT_CHECK(k.shape() == q.shape(), "op 'info_nce': keys ", desc(k), " must match queries ", desc(q));
    HPT_CHECK(queue.dim() == 2 && queue.size(1) == q.size(1), "op 'info_nce': queue ", desc(queue),
              " must be [K, ", q.size(1), "]");
    HPT_CHECK(q.size(0) > 0, "op 'info_nce': empty batch");
    // The CUDA kernels split rows of D columns among threads (a division by D).
    HPT_CHECK(q.size(1) > 0, "op 'info_nce': queries ", desc(q), " have no features (D = 0)");
    HPT_CHECK(queue.size(0) > 0, "op 'info_nce': empty queue ", desc(queue), " (MoCo needs K >= 1 negatives)");
    HPT_CHECK(temperature > 0, "op 'info_nce': temperature must be positive, got ", temperature);
    const Device d = common_device("info_nce", {q, k, queue});
    // lse and o (the softmax-weighted sum of the queue rows, kernels/cpu/info_nce.cpp) are what the
    // backward needs: with o, dq takes no second pass over the queue.
    Tensor loss = empty({}, q.dtype(), d), lse = empty({q.size(0)}, q.dtype(), d), o = empty(q.shape(), q.dtype(), d);
    const Tensor qc = q.contiguous(), kc = k.contiguous(), uc = queue.contiguous();
    InfoNceAttrs a{temperature};
    run_kernel(OpId::info_nce, {qc, kc, uc}, {loss, lse, o}, &a);
    if (should_record({q, k, queue}))
        record(OpId::info_nce, {q, k, queue}, {loss, lse, o}, keep(a), {qc, kc, uc, lse, o});
    return loss;
}

std::vector<Tensor> backward_info_nce(const BackwardCtx& c) {
    const Tensor &q = c.saved[0], &k = c.saved[1], &queue = c.saved[2], &lse = c.saved[3], &o = c.saved[4];
    Tensor gq = c.needs_grad(0) ? empty(q.shape(), q.dtype(), q.device()) : Tensor();
    Tensor gk = c.needs_grad(1) ? empty(k.shape(), k.dtype(), k.device()) : Tensor();
    Tensor gu = c.needs_grad(2) ? empty(queue.shape(), queue.dtype(), queue.device()) : Tensor();
    run_kernel(OpId::info_nce_backward, {c.grad_out[0], q, k, queue, lse, o}, {gq, gk, gu}, c.attrs);
    return {gq, gk, gu};
}

void momentum_update(const Tensor& target, const Tensor& source, double m) {
    check_defined("momentum_update", {target, source});
    check_same_dtype("momentum_update", {target, source});
    check_floating("momentum_update", target);
    HPT_CHECK(target.shape() == source.shape() && target.is_contiguous() && source.is_contiguous(),
              "op 'momentum_update': target ", desc(target), " and source ", desc(source),
              " must be contiguous and of one shape");
    HPT_CHECK(m >= 0 && m <= 1, "op 'momentum_update': momentum ", m, " outside [0, 1]");
    MomentumAttrs a{m};
    run_kernel(OpId::momentum_update, {target, source}, {}, &a);
    target.storage()->bump_version();
}

}  // namespace hpt
