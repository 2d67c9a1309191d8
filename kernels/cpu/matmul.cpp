// CPU kernels of matmul (2-D and batched) and linear (x w^T + b).
#include "engine/ops/registry.h"
#include "kernels/cpu/gemm.h"
#include "kernels/layout.h"
#include <cstdint>

namespace hpt {
namespace {

void matmul_kernel(const KernelArgs& args) {
    const Tensor &a = args.in[0], &b = args.in[1];
    Tensor& c = args.out[0];
    const bool batched = a.dim() == 3;
    const int64_t B = batched ? a.size(0) : 1;
    const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
    const GemmOperand ma = gemm_operand(a), mb = gemm_operand(b);
    HPT_DISPATCH_FLOAT(a.dtype(), "matmul", [&] {
        const scalar_t* pa = a.data<scalar_t>();
        const scalar_t* pb = b.data<scalar_t>();
        scalar_t* pc = c.data<scalar_t>();
        for (int64_t i = 0; i < B; ++i) {
            cpu_gemm(ma.trans, mb.trans, M, N, K, scalar_t(1), pa + (batched ? i * a.stride(0) : 0), ma.ld,
                     pb + (batched ? i * b.stride(0) : 0), mb.ld, scalar_t(0), pc + i * M * N, N);
        }
    });
}
HPT_REGISTER_KERNEL(matmul, cpu, matmul_kernel);

void linear_kernel(const KernelArgs& args) {
    const Tensor &x = args.in[0], &w = args.in[1], &bias = args.in[2];
    Tensor& y = args.out[0];
    const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
    const GemmOperand mx = gemm_operand(x), mw = gemm_operand(w);
    HPT_DISPATCH_FLOAT(x.dtype(), "linear", [&] {
        scalar_t* py = y.data<scalar_t>();
        scalar_t beta = 0;
        if (bias.defined()) {
            const scalar_t* pb = bias.data<scalar_t>();
            for (int64_t i = 0; i < M; ++i)
                for (int64_t j = 0; j < N; ++j) py[i * N + j] = pb[j];
            beta = 1;
        }
        // y = x w^T: w is [N, K] row-major, so op(B) is its transpose.
        cpu_gemm(mx.trans, !mw.trans, M, N, K, scalar_t(1), x.data<scalar_t>(), mx.ld, w.data<scalar_t>(), mw.ld,
                 beta, py, N);
    });
}
HPT_REGISTER_KERNEL(linear, cpu, linear_kernel);

}  // namespace
}  // namespace hpt
