// CPU kernels of the unary ops (neg, exp, log, sqrt, relu, clamp), their fused backward kernels
// (relu_backward, clamp_backward) and where.
#include <cstdint>
#include <cmath>
#include <limits>

#include "engine/ops/attrs.h"
#include "engine/ops/registry.h"
#include "kernels/cpu/loops.h"

namespace hpt {
namespace {

template <class T, class F>
void unary_typed(const KernelArgs& args, F f) {
    using C = typename compute_type<T>::type;
    const LoopPlan<2> plan = make_loop_plan<2>({&args.out[0], &args.in[0]});
    loop_run(plan, [&](char** p, const int64_t* s, int64_t n) {
        T* o = reinterpret_cast<T*>(p[0]);
        const T* a = reinterpret_cast<const T*>(p[1]);
        if (s[0] == int64_t(sizeof(T)) && s[1] == int64_t(sizeof(T))) {
            for (int64_t i = 0; i < n; ++i) o[i] = T(f(C(a[i])));
        } else {
            for (int64_t i = 0; i < n; ++i)
                *reinterpret_cast<T*>(p[0] + i * s[0]) = T(f(C(*reinterpret_cast<const T*>(p[1] + i * s[1]))));
        }
    });
}

#define HPT_UNARY_FLOAT(name, expr)                                                              \
    void name##_kernel(const KernelArgs& args) {                                                 \
        HPT_DISPATCH_FLOAT_BF16(args.out[0].dtype(), #name, [&] {                                \
            using C = typename compute_type<scalar_t>::type;                                     \
            unary_typed<scalar_t>(args, [](C x) { return expr; });                               \
        });                                                                                      \
    }                                                                                            \
    HPT_REGISTER_KERNEL(name, cpu, name##_kernel);

HPT_UNARY_FLOAT(exp, std::exp(x))
HPT_UNARY_FLOAT(log, std::log(x))
HPT_UNARY_FLOAT(sqrt, std::sqrt(x))
HPT_UNARY_FLOAT(relu, x < C(0) ? C(0) : x)  // NaN propagates (as in PyTorch); -0 stays -0
#undef HPT_UNARY_FLOAT

void neg_kernel(const KernelArgs& args) {
    HPT_DISPATCH_ALL(args.out[0].dtype(), "neg", [&] {
        using C = typename compute_type<scalar_t>::type;
        unary_typed<scalar_t>(args, [](C x) { return C(-x); });
    });
}
HPT_REGISTER_KERNEL(neg, cpu, neg_kernel);

void clamp_kernel(const KernelArgs& args) {
    const ClampAttrs& a = args.attr<ClampAttrs>();
    HPT_DISPATCH_FLOAT_BF16(args.out[0].dtype(), "clamp", [&] {
        using C = typename compute_type<scalar_t>::type;
        const C lo = C(a.lo), hi = C(a.hi);
        // NaN propagates, as in PyTorch.
        unary_typed<scalar_t>(args, [lo, hi](C x) { return x < lo ? lo : (x > hi ? hi : x); });
    });
}
HPT_REGISTER_KERNEL(clamp, cpu, clamp_kernel);

// out = grad * mask(x): relu_backward takes (grad, relu output), clamp_backward (grad, input).
// `mask` is called with x in the compute type. Dense operands (the usual case: a backward of an
// op that wrote its output whole) take a plain loop the compiler vectorises; others the strided one.
template <class Mask>
void masked_grad(const KernelArgs& args, Mask mask) {
    HPT_DISPATCH_FLOAT_BF16(args.out[0].dtype(), op_name(args.op), [&] {
        using T = scalar_t;
        using C = typename compute_type<T>::type;
        const LoopPlan<3> plan = make_loop_plan<3>({&args.out[0], &args.in[0], &args.in[1]});
        loop_run(plan, [&](char** p, const int64_t* s, int64_t n) {
            const int64_t e = int64_t(sizeof(T));
            if (s[0] == e && s[1] == e && s[2] == e) {
                T* o = reinterpret_cast<T*>(p[0]);
                const T* g = reinterpret_cast<const T*>(p[1]);
                const T* x = reinterpret_cast<const T*>(p[2]);
                for (int64_t i = 0; i < n; ++i) o[i] = mask(C(x[i])) ? g[i] : T(0);
                return;
            }
            for (int64_t i = 0; i < n; ++i) {
                const T g = *reinterpret_cast<const T*>(p[1] + i * s[1]);
                const C x = C(*reinterpret_cast<const T*>(p[2] + i * s[2]));
                *reinterpret_cast<T*>(p[0] + i * s[0]) = mask(x) ? g : T(0);
            }
        });
    });
}

void relu_backward_kernel(const KernelArgs& args) {
    masked_grad(args, [](auto y) { return y > decltype(y)(0); });
}
HPT_REGISTER_KERNEL(relu_backward, cpu, relu_backward_kernel);

void clamp_backward_kernel(const KernelArgs& args) {
    const ClampAttrs& a = args.attr<ClampAttrs>();
    // The bounds compared in double, as given (a float bound would round them).
    masked_grad(args, [lo = a.lo, hi = a.hi](auto x) { return double(x) >= lo && double(x) <= hi; });
}
HPT_REGISTER_KERNEL(clamp_backward, cpu, clamp_backward_kernel);

void where_kernel(const KernelArgs& args) {
    HPT_DISPATCH_ALL(args.out[0].dtype(), "where", [&] {
        using T = scalar_t;
        const LoopPlan<4> plan = make_loop_plan<4>({&args.out[0], &args.in[0], &args.in[1], &args.in[2]});
        loop_run(plan, [&](char** p, const int64_t* s, int64_t n) {
            for (int64_t i = 0; i < n; ++i) {
                const bool c = *reinterpret_cast<const uint8_t*>(p[1] + i * s[1]) != 0;
                *reinterpret_cast<T*>(p[0] + i * s[0]) = *reinterpret_cast<const T*>(p[c ? 2 : 3] + i * s[c ? 2 : 3]);
            }
        });
    });
}
HPT_REGISTER_KERNEL(where, cpu, where_kernel);

}  // namespace
}  // namespace hpt
