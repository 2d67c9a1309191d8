// Bias forward and backward of the CUDA conv2d (declared in conv2d_bias.h).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/conv2d_bias.h"
#include <cstdint>

namespace hpt::cuda {
namespace {

template <class T>
__global__ void add_bias_kernel(int64_t n, T* y, const T* b, int64_t O, int64_t P) {
    HPT_GRID_STRIDE(e, n) { y[e] += b[(e / P) % O]; }
}

// One block per output channel.
template <class T>
__global__ void bias_grad_kernel(const T* gy, T* gb, int64_t N, int64_t O, int64_t P) {
    const int64_t o = blockIdx.x;
    double acc = 0.0;
    for (int64_t e = threadIdx.x; e < N * P; e += blockDim.x) {
        const int64_t n = e / P, p = e - n * P;
        acc += double(gy[(n * O + o) * P + p]);
    }
    acc = block_reduce(acc, SumOp{});
    if (threadIdx.x == 0) gb[o] = T(acc);
}

}  // namespace

void conv2d_add_bias(const Tensor& y, const Tensor& b) {
    const int64_t O = y.size(1), P = y.size(2) * y.size(3);
    HPT_DISPATCH_FLOAT(y.dtype(), "conv2d", [&] {
        launch_linear("conv2d_bias", add_bias_kernel<scalar_t>, y.numel(), y.data<scalar_t>(), b.data<scalar_t>(), O, P);
    });
}

void conv2d_bias_grad(const Tensor& gy, const Tensor& gb) {
    const int64_t N = gy.size(0), O = gy.size(1), P = gy.size(2) * gy.size(3);
    if (O == 0) return;
    HPT_DISPATCH_FLOAT(gy.dtype(), "conv2d_backward", [&] {
        bias_grad_kernel<scalar_t><<<unsigned(O), kThreads, 0, current_stream()>>>(gy.data<scalar_t>(),
                                                                                 gb.data<scalar_t>(), N, O, P);
        HPT_CUDA_LAUNCH_CHECK("conv2d_bias_grad");
    });
}

}  // namespace hpt::cuda
