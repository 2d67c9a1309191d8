// The fused SGD step on CUDA: p -= lr * (b = momentum * b + g + wd * p), one pass over the flat
// parameter, gradient and momentum buffers (kernels/cpu/index.cpp holds the CPU twin). 12 bytes
// read and 8 written per f32 parameter, so it is bandwidth-bound: f32 buffers that are 16-byte
// aligned go four elements per load (float4), the rest one at a time.
#include "engine/ops/attrs.h"
#include "engine/ops/registry.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernel_entry.h"
#include <cstdint>

namespace hpt::cuda {
namespace {

template <class T>
__device__ inline void sgd_one(T& p, T g, T& b, T lr, T mom, T wd) {
    const T d = g + wd * p;
    b = mom * b + d;
    p -= lr * b;
}

template <class T>
__global__ void sgd_kernel(int64_t n, T* p, const T* g, T* b, T lr, T mom, T wd) {
    HPT_GRID_STRIDE(i, n) { sgd_one(p[i], g[i], b[i], lr, mom, wd); }
}

// n4 groups of four; the caller handles the tail.
__global__ void sgd_kernel_f4(int64_t n4, float4* p, const float4* g, float4* b, float lr, float mom, float wd) {
    HPT_GRID_STRIDE(i, n4) {
        float4 pv = p[i], bv = b[i];
        const float4 gv = g[i];
        sgd_one(pv.x, gv.x, bv.x, lr, mom, wd);
        sgd_one(pv.y, gv.y, bv.y, lr, mom, wd);
        sgd_one(pv.z, gv.z, bv.z, lr, mom, wd);
        sgd_one(pv.w, gv.w, bv.w, lr, mom, wd);
        p[i] = pv;
        b[i] = bv;
    }
}

bool aligned16(const void* q) { return (reinterpret_cast<uintptr_t>(q) & 15u) == 0; }

void sgd_step_cuda(const KernelArgs& args) {
    const SgdAttrs& a = args.attr<SgdAttrs>();
    const int64_t n = args.in[0].numel();
    HPT_DISPATCH_FLOAT(args.in[0].dtype(), "sgd_step", [&] {
        using T = scalar_t;
        T* p = args.in[0].data<T>();
        const T* g = args.in[1].data<T>();
        T* b = args.in[2].data<T>();
        const T lr = T(a.lr), mom = T(a.momentum), wd = T(a.weight_decay);
        int64_t done = 0;
        if constexpr (std::is_same<T, float>::value) {
            if (aligned16(p) && aligned16(g) && aligned16(b)) {
                const int64_t n4 = n / 4;
                launch_linear("sgd_step", sgd_kernel_f4, n4, reinterpret_cast<float4*>(p),
                              reinterpret_cast<const float4*>(g), reinterpret_cast<float4*>(b), lr, mom, wd);
                done = n4 * 4;
            }
        }
        launch_linear("sgd_step", sgd_kernel<T>, n - done, p + done, g + done, b + done, lr, mom, wd);
    });
}
HPT_REGISTER_CUDA_KERNEL(sgd_step, sgd_step_cuda);

}  // namespace
}  // namespace hpt::cuda
