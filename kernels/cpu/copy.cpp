// CPU kernels that write whole tensors: copy (strided, broadcasting, converting dtype; also the
// host side of host<->host transfers), fill and fill_random.
#include <cstdint>
#include <cstring>

#include "engine/core/philox.h"
#include "engine/ops/attrs.h"
#include "engine/ops/registry.h"
#include "kernels/cpu/loops.h"

namespace hpt {
namespace {

template <class D, class S>
void copy_typed(const KernelArgs& args) {
    using C = typename compute_type<S>::type;
    const LoopPlan<2> plan = make_loop_plan<2>({&args.out[0], &args.in[0]});
    loop_run(plan, [&](char** p, const int64_t* s, int64_t n) {
        if (std::is_same<D, S>::value && s[0] == int64_t(sizeof(D)) && s[1] == int64_t(sizeof(S))) {
            std::memcpy(p[0], p[1], size_t(n) * sizeof(D));
        } else if (s[0] == int64_t(sizeof(D)) && s[1] == int64_t(sizeof(S))) {
            D* d = reinterpret_cast<D*>(p[0]);
            const S* src = reinterpret_cast<const S*>(p[1]);
            for (int64_t i = 0; i < n; ++i) d[i] = D(typename compute_type<D>::type(C(src[i])));
        } else {
            for (int64_t i = 0; i < n; ++i)
                *reinterpret_cast<D*>(p[0] + i * s[0]) =
                    D(typename compute_type<D>::type(C(*reinterpret_cast<const S*>(p[1] + i * s[1]))));
        }
    });
}

void copy_kernel(const KernelArgs& args) {
    HPT_CHECK(args.in[0].device().is_cpu() && args.out[0].device().is_cpu(),
              "cpu copy kernel given a device tensor");
    HPT_DISPATCH_ALL(args.out[0].dtype(), "copy", [&] {
        using D = scalar_t;
        HPT_DISPATCH_ALL(args.in[0].dtype(), "copy", [&] { copy_typed<D, scalar_t>(args); });
    });
}
HPT_REGISTER_KERNEL(copy, cpu, copy_kernel);

void fill_kernel(const KernelArgs& args) {
    const double v = args.attr<FillAttrs>().value;
    HPT_DISPATCH_ALL(args.out[0].dtype(), "fill", [&] {
        using T = scalar_t;
        const T value = T(typename compute_type<T>::type(v));
        const LoopPlan<1> plan = make_loop_plan<1>({&args.out[0]});
        loop_run(plan, [&](char** p, const int64_t* s, int64_t n) {
            if (s[0] == int64_t(sizeof(T))) {
                T* o = reinterpret_cast<T*>(p[0]);
                for (int64_t i = 0; i < n; ++i) o[i] = value;
            } else {
                for (int64_t i = 0; i < n; ++i) *reinterpret_cast<T*>(p[0] + i * s[0]) = value;
            }
        });
    });
}
HPT_REGISTER_KERNEL(fill, cpu, fill_kernel);

void fill_random_kernel(const KernelArgs& args) {
    const RandomAttrs& a = args.attr<RandomAttrs>();
    const Tensor& out = args.out[0];
    HPT_CHECK(out.is_contiguous(), "fill_random needs a contiguous output");
    HPT_DISPATCH_FLOAT_BF16(out.dtype(), "fill_random", [&] {
        scalar_t* o = out.data<scalar_t>();
        parallel_for(out.numel(), 16384, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) {
                const Philox4 r = philox_at(a.seed, a.stream, a.offset + uint64_t(i));
                const double v = philox_fill_value(a.dist == RandomAttrs::normal, a.a, a.b, r);  // = the GPU's
                o[i] = scalar_t(typename compute_type<scalar_t>::type(v));
            }
        });
    });
}
HPT_REGISTER_KERNEL(fill_random, cpu, fill_random_kernel);

}  // namespace
}  // namespace hpt
