// Front-ends and backward formulas of matmul and linear.
#include "engine/autograd/record.h"
#include "engine/ops/op_utils.h"
#include "engine/ops/ops.h"
#include <cstdint>

namespace hpt {

namespace {
// GEMM reads row- or column-major operands in place; anything else is copied once here.
Tensor gemm_ready(const Tensor& t) {
    const int64_t sr = t.stride(-2), sc = t.stride(-1);
    const bool row = sc == 1 && (sr >= t.size(-1) || t.size(-2) == 1);
    const bool col = sr == 1 && (sc >= t.size(-2) || t.size(-1) == 1);
    const bool batch_ok = t.dim() < 3 || t.size(0) == 1 || t.stride(0) != 0;
    return (row || col) && batch_ok ? t : t.contiguous();
}
}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
    check_defined("matmul", {a, b});
    check_same_dtype("matmul", {a, b});
    check_floating("matmul", a);
    HPT_CHECK((a.dim() == 2 && b.dim() == 2) || (a.dim() == 3 && b.dim() == 3), "op 'matmul': needs two 2-D or two 3-D tensors, got ",
              desc(a), " and ", desc(b));
    HPT_CHECK(a.size(-1) == b.size(-2), "op 'matmul': inner dimensions differ: ", desc(a), " x ", desc(b));
    HPT_CHECK(a.dim() == 2 || a.size(0) == b.size(0), "op 'matmul': batch sizes differ: ", desc(a), " x ", desc(b));
    const Device d = common_device("matmul", {a, b});
    Shape s = a.shape();
    s.back() = b.size(-1);
    Tensor out = empty(s, a.dtype(), d);
    run_kernel(OpId::matmul, {gemm_ready(a), gemm_ready(b)}, {out});
    if (should_record({a, b})) record(OpId::matmul, {a, b}, {out}, nullptr, {a, b});
    return out;
}

std::vector<Tensor> backward_matmul(const BackwardCtx& c) {
    const Tensor& g = c.grad_out[0];
    const Tensor &a = c.saved[0], &b = c.saved[1];
    return {c.needs_grad(0) ? matmul(g, b.transpose(-1, -2)) : Tensor(),
            c.needs_grad(1) ? matmul(a.transpose(-1, -2), g) : Tensor()};
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
    check_defined("linear", {x, w});
    check_same_dtype("linear", {x, w, bias});
    check_floating("linear", x);
    HPT_CHECK(x.dim() >= 1 && w.dim() == 2 && x.size(-1) == w.size(1), "op 'linear': input ", desc(x),
              " does not fit weight ", desc(w), " (expects [..., in] and [out, in])");
    HPT_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == w.size(0)), "op 'linear': bias ", desc(bias),
              " does not fit weight ", desc(w));
    const Device d = common_device("linear", {x, w, bias});
    const Tensor x2 = x.dim() == 2 ? x : x.reshape({-1, x.size(-1)});
    Tensor out2 = empty({x2.size(0), w.size(0)}, x.dtype(), d);
    run_kernel(OpId::linear, {gemm_ready(x2), gemm_ready(w), bias.defined() ? bias.contiguous() : bias}, {out2});
    Shape s = x.shape();
    s.back() = w.size(0);
    Tensor out = out2.view(s);
    if (should_record({x, w, bias})) record(OpId::linear, {x, w, bias}, {out}, nullptr, {x, w});
    return out;
}

std::vector<Tensor> backward_linear(const BackwardCtx& c) {
    const Tensor &x = c.saved[0], &w = c.saved[1];
    const Tensor g = c.grad_out[0].reshape({-1, w.size(0)});
    const Tensor x2 = x.reshape({-1, x.size(-1)});
    return {c.needs_grad(0) ? matmul(g, w).reshape(x.shape()) : Tensor(),
            c.needs_grad(1) ? matmul(g.t(), x2) : Tensor(),
            c.needs_grad(2) ? sum(g, {0}) : Tensor()};
}

}  // namespace hpt
