// CPU kernels of the broadcasting binary ops: add, sub, mul, div, pow and the comparisons.
#include <cstdint>
#include <cmath>

#include "engine/ops/registry.h"
#include "kernels/cpu/loops.h"

namespace hpt {
namespace {

struct AddF { template <class C> C operator()(C a, C b) const { return a + b; } };
struct SubF { template <class C> C operator()(C a, C b) const { return a - b; } };
struct MulF { template <class C> C operator()(C a, C b) const { return a * b; } };
struct DivF { template <class C> C operator()(C a, C b) const { return a / b; } };
struct PowF { template <class C> C operator()(C a, C b) const { return C(std::pow(a, b)); } };
struct EqF { template <class C> uint8_t operator()(C a, C b) const { return a == b; } };
struct GtF { template <class C> uint8_t operator()(C a, C b) const { return a > b; } };
struct LtF { template <class C> uint8_t operator()(C a, C b) const { return a < b; } };

template <class T, class Out, class F>
void binary_typed(const KernelArgs& args, F f) {
    using C = typename compute_type<T>::type;
    const LoopPlan<3> plan = make_loop_plan<3>({&args.out[0], &args.in[0], &args.in[1]});
    loop_run(plan, [&](char** p, const int64_t* s, int64_t n) {
        Out* o = reinterpret_cast<Out*>(p[0]);
        const T* a = reinterpret_cast<const T*>(p[1]);
        const T* b = reinterpret_cast<const T*>(p[2]);
        constexpr int64_t so = sizeof(Out), st = sizeof(T);
        if (s[0] == so && s[1] == st && s[2] == st) {
            for (int64_t i = 0; i < n; ++i) o[i] = Out(f(C(a[i]), C(b[i])));
        } else if (s[0] == so && s[1] == st && s[2] == 0) {
            const C bv = C(b[0]);
            for (int64_t i = 0; i < n; ++i) o[i] = Out(f(C(a[i]), bv));
        } else if (s[0] == so && s[1] == 0 && s[2] == st) {
            const C av = C(a[0]);
            for (int64_t i = 0; i < n; ++i) o[i] = Out(f(av, C(b[i])));
        } else {
            for (int64_t i = 0; i < n; ++i) {
                *reinterpret_cast<Out*>(p[0] + i * s[0]) =
                    Out(f(C(*reinterpret_cast<const T*>(p[1] + i * s[1])),
                          C(*reinterpret_cast<const T*>(p[2] + i * s[2]))));
            }
        }
    });
}

template <class F>
void arith_kernel(const KernelArgs& args) {
    HPT_DISPATCH_ALL(args.out[0].dtype(), op_name(args.op), [&] { binary_typed<scalar_t, scalar_t>(args, F{}); });
}

template <class F>
void float_kernel(const KernelArgs& args) {
    HPT_DISPATCH_FLOAT_BF16(args.out[0].dtype(), op_name(args.op),
                            [&] { binary_typed<scalar_t, scalar_t>(args, F{}); });
}

template <class F>
void compare_kernel(const KernelArgs& args) {
    HPT_DISPATCH_ALL(args.in[0].dtype(), op_name(args.op), [&] { binary_typed<scalar_t, uint8_t>(args, F{}); });
}

HPT_REGISTER_KERNEL(add, cpu, arith_kernel<AddF>);
HPT_REGISTER_KERNEL(sub, cpu, arith_kernel<SubF>);
HPT_REGISTER_KERNEL(mul, cpu, arith_kernel<MulF>);
HPT_REGISTER_KERNEL(div, cpu, arith_kernel<DivF>);
HPT_REGISTER_KERNEL(pow, cpu, float_kernel<PowF>);
HPT_REGISTER_KERNEL(eq, cpu, compare_kernel<EqF>);
HPT_REGISTER_KERNEL(gt, cpu, compare_kernel<GtF>);
HPT_REGISTER_KERNEL(lt, cpu, compare_kernel<LtF>);

}  // namespace
}  // namespace hpt
