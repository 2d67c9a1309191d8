// The key encoder's momentum update on CUDA: target = m * target + (1 - m) * source over the flat
// parameter buffers, one pass (8 bytes read, 4 written per f32 parameter; bandwidth-bound, so
// 16-byte aligned f32 buffers go four elements per load). The CPU twin is kernels/cpu/info_nce.cpp.
#include "engine/ops/attrs.h"
#include "engine/ops/registry.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernel_entry.h"
#include <cstdint>

namespace hpt::cuda {
namespace {

template <class T>
__global__ void ema_kernel(int64_t n, T* t, const T* s, T m, T om) {
    HPT_GRID_STRIDE(i, n) { t[i] = m * t[i] + om * s[i]; }
}

__global__ void ema_kernel_f4(int64_t n4, float4* t, const float4* s, float m, float om) {
    HPT_GRID_STRIDE(i, n4) {
        float4 a = t[i];
        const float4 b = s[i];
        a.x = m * a.x + om * b.x;
        a.y = m * a.y + om * b.y;
        a.z = m * a.z + om * b.z;
        a.w = m * a.w + om * b.w;
        t[i] = a;
    }
}

void momentum_update_cuda(const KernelArgs& args) {
    const double mm = args.attr<MomentumAttrs>().momentum;
    const int64_t n = args.in[0].numel();
    HPT_DISPATCH_FLOAT(args.in[0].dtype(), "momentum_update", [&] {
        using T = scalar_t;
        T* t = args.in[0].data<T>();
        const T* s = args.in[1].data<T>();
        const T m = T(mm), om = T(1.0 - mm);
        int64_t done = 0;
        if constexpr (std::is_same<T, float>::value) {
            if ((reinterpret_cast<uintptr_t>(t) & 15u) == 0 && (reinterpret_cast<uintptr_t>(s) & 15u) == 0) {
                done = n / 4 * 4;
                launch_linear("momentum_update", ema_kernel_f4, n / 4, reinterpret_cast<float4*>(t),
                              reinterpret_cast<const float4*>(s), m, om);
            }
        }
        launch_linear("momentum_update", ema_kernel<T>, n - done, t + done, s + done, m, om);
    });
}
HPT_REGISTER_CUDA_KERNEL(momentum_update, momentum_update_cuda);

}  // namespace
}  // namespace hpt::cuda
