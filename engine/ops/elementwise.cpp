// Front-ends and backward formulas of the elementwise ops.
#include <cmath>
#include <limits>

#include "engine/autograd/record.h"
#include "engine/ops/op_utils.h"
#include "engine/ops/ops.h"

namespace hpt {

namespace {

Tensor binary(OpId op, const Tensor& a, const Tensor& b, bool compare = false) {
    const char* name = op_name(op);
    check_defined(name, {a, b});
    check_same_dtype(name, {a, b});
    const Device d = common_device(name, {a, b});
    Tensor out = empty(broadcast_shapes(a.shape(), b.shape(), name), compare ? DType::u8 : a.dtype(), d);
    run_kernel(op, {a, b}, {out});
    return out;
}

Tensor unary(OpId op, const Tensor& a, const void* attrs = nullptr) {
    check_defined(op_name(op), {a});
    Tensor out = empty(a.shape(), a.dtype(), a.device());
    run_kernel(op, {a}, {out}, attrs);
    return out;
}

Tensor number(double v, const Tensor& like) { return scalar_tensor(v, like.dtype()); }

}  // namespace

// ---------------------------------------------------------------- binary

#define HPT_BINARY_FRONT(name, saves_inputs)                                     \
    Tensor name(const Tensor& a, const Tensor& b) {                              \
        Tensor out = binary(OpId::name, a, b);                                   \
        if (should_record({a, b})) {                                             \
            std::vector<Tensor> saved;                                           \
            if (saves_inputs) saved = {a, b};                                    \
            record(OpId::name, {a, b}, {out}, nullptr, saved);                   \
        }                                                                        \
        return out;                                                              \
    }
HPT_BINARY_FRONT(add, false)
HPT_BINARY_FRONT(sub, false)
HPT_BINARY_FRONT(mul, true)
HPT_BINARY_FRONT(div, true)
#undef HPT_BINARY_FRONT

Tensor pow(const Tensor& a, const Tensor& b) {
    check_floating("pow", a);
    Tensor out = binary(OpId::pow, a, b);
    if (should_record({a, b})) record(OpId::pow, {a, b}, {out}, nullptr, {a, b, out});
    return out;
}
Tensor pow(const Tensor& a, double e) { return pow(a, number(e, a)); }

Tensor eq(const Tensor& a, const Tensor& b) { return binary(OpId::eq, a, b, true); }
Tensor gt(const Tensor& a, const Tensor& b) { return binary(OpId::gt, a, b, true); }
Tensor lt(const Tensor& a, const Tensor& b) { return binary(OpId::lt, a, b, true); }

std::vector<Tensor> backward_add(const BackwardCtx& c) {
    const Tensor& g = c.grad_out[0];
    return {c.needs_grad(0) ? sum_to(g, c.inputs[0].shape) : Tensor(),
            c.needs_grad(1) ? sum_to(g, c.inputs[1].shape) : Tensor()};
}

std::vector<Tensor> backward_sub(const BackwardCtx& c) {
    const Tensor& g = c.grad_out[0];
    return {c.needs_grad(0) ? sum_to(g, c.inputs[0].shape) : Tensor(),
            c.needs_grad(1) ? sum_to(neg(g), c.inputs[1].shape) : Tensor()};
}

std::vector<Tensor> backward_mul(const BackwardCtx& c) {
    const Tensor& g = c.grad_out[0];
    const Tensor &a = c.saved[0], &b = c.saved[1];
    return {c.needs_grad(0) ? sum_to(g * b, c.inputs[0].shape) : Tensor(),
            c.needs_grad(1) ? sum_to(g * a, c.inputs[1].shape) : Tensor()};
}

std::vector<Tensor> backward_div(const BackwardCtx& c) {
    const Tensor& g = c.grad_out[0];
    const Tensor &a = c.saved[0], &b = c.saved[1];
    const Tensor ga = g / b;
    return {c.needs_grad(0) ? sum_to(ga, c.inputs[0].shape) : Tensor(),
            c.needs_grad(1) ? sum_to(neg(ga * a / b), c.inputs[1].shape) : Tensor()};
}

std::vector<Tensor> backward_pow(const BackwardCtx& c) {
    const Tensor& g = c.grad_out[0];
    const Tensor &a = c.saved[0], &b = c.saved[1], &out = c.saved[2];
    Tensor ga, gb;
    if (c.needs_grad(0)) ga = sum_to(g * b * pow(a, b - 1.0), c.inputs[0].shape);
    if (c.needs_grad(1)) {
        // d/db a^b = a^b log a; taken as 0 where a == 0 (the limit for b > 0), as PyTorch does.
        const Tensor zero = number(0.0, a);
        gb = sum_to(where(eq(a, zero), zero, g * out * log(a)), c.inputs[1].shape);
    }
    return {ga, gb};
}

// ---------------------------------------------------------------- unary

Tensor neg(const Tensor& a) {
    Tensor out = unary(OpId::neg, a);
    if (should_record({a})) record(OpId::neg, {a}, {out});
    return out;
}
std::vector<Tensor> backward_neg(const BackwardCtx& c) { return {neg(c.grad_out[0])}; }

Tensor exp(const Tensor& a) {
    check_floating("exp", a);
    Tensor out = unary(OpId::exp, a);
    if (should_record({a})) record(OpId::exp, {a}, {out}, nullptr, {out});
    return out;
}
std::vector<Tensor> backward_exp(const BackwardCtx& c) { return {c.grad_out[0] * c.saved[0]}; }

Tensor log(const Tensor& a) {
    check_floating("log", a);
    Tensor out = unary(OpId::log, a);
    if (should_record({a})) record(OpId::log, {a}, {out}, nullptr, {a});
    return out;
}
std::vector<Tensor> backward_log(const BackwardCtx& c) { return {c.grad_out[0] / c.saved[0]}; }

Tensor sqrt(const Tensor& a) {
    check_floating("sqrt", a);
    Tensor out = unary(OpId::sqrt, a);
    if (should_record({a})) record(OpId::sqrt, {a}, {out}, nullptr, {out});
    return out;
}
std::vector<Tensor> backward_sqrt(const BackwardCtx& c) { return {c.grad_out[0] / (c.saved[0] * 2.0)}; }

Tensor relu(const Tensor& a) {
    check_floating("relu", a);
    Tensor out = unary(OpId::relu, a);
    if (should_record({a})) record(OpId::relu, {a}, {out}, nullptr, {out});
    return out;
}
std::vector<Tensor> backward_relu(const BackwardCtx& c) {
    const Tensor& g = c.grad_out[0];
    Tensor gi = empty(g.shape(), g.dtype(), g.device());
    run_kernel(OpId::relu_backward, {g, c.saved[0]}, {gi});
    return {gi};
}

Tensor clamp(const Tensor& a, std::optional<double> lo, std::optional<double> hi) {
    check_floating("clamp", a);
    const double inf = std::numeric_limits<double>::infinity();
    ClampAttrs at{lo.value_or(-inf), hi.value_or(inf)};
    HPT_CHECK(at.lo <= at.hi, "op 'clamp': min ", at.lo, " > max ", at.hi);
    Tensor out = unary(OpId::clamp, a, &at);
    if (should_record({a})) record(OpId::clamp, {a}, {out}, keep(at), {a});
    return out;
}
std::vector<Tensor> backward_clamp(const BackwardCtx& c) {
    const Tensor& g = c.grad_out[0];
    Tensor gi = empty(g.shape(), g.dtype(), g.device());
    run_kernel(OpId::clamp_backward, {g, c.saved[0]}, {gi}, c.attrs);
    return {gi};
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
    check_defined("where", {cond, a, b});
    check_dtype("where", cond, DType::u8, "the condition");
    check_same_dtype("where", {a, b});
    const Device d = common_device("where", {cond, a, b});
    const Shape s = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
    Tensor out = empty(s, a.dtype(), d);
    run_kernel(OpId::where, {cond, a, b}, {out});
    if (should_record({a, b})) record(OpId::where, {cond, a, b}, {out}, nullptr, {cond});
    return out;
}
std::vector<Tensor> backward_where(const BackwardCtx& c) {
    const Tensor& g = c.grad_out[0];
    const Tensor& cond = c.saved[0];
    const Tensor zero = number(0.0, g);
    return {Tensor(), c.needs_grad(1) ? sum_to(where(cond, g, zero), c.inputs[1].shape) : Tensor(),
            c.needs_grad(2) ? sum_to(where(cond, zero, g), c.inputs[2].shape) : Tensor()};
}

// ---------------------------------------------------------------- operators

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, double s) { return add(a, number(s, a)); }
Tensor operator-(const Tensor& a, double s) { return sub(a, number(s, a)); }
Tensor operator*(const Tensor& a, double s) { return mul(a, number(s, a)); }
Tensor operator/(const Tensor& a, double s) { return div(a, number(s, a)); }
Tensor operator+(double s, const Tensor& a) { return add(number(s, a), a); }
Tensor operator-(double s, const Tensor& a) { return sub(number(s, a), a); }
Tensor operator*(double s, const Tensor& a) { return mul(number(s, a), a); }
Tensor operator/(double s, const Tensor& a) { return div(number(s, a), a); }

}  // namespace hpt
