// cuBLAS GEMM on row-major operands, for kernels other than matmul that are a matrix product in
// disguise (the pointwise convolution in kernels/cuda/conv2d_cudnn.cpp). Defined in matmul.cu.
#pragma once
#include <cstdint>

namespace hpt::cuda {

// Row-major C[b] = alpha * op(A[b]) op(B[b]) + beta * C[b] for b < batch, on the current stream;
// op(A) is M x K, op(B) K x N, sa/sb/sc the elements between consecutive batch entries. f32 uses
// TF32 tensor cores only when cuda_tf32() is on. T: float or double.
template <class T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, int64_t sa,
          const T* B, int64_t ldb, int64_t sb, T beta, T* C, int64_t ldc, int64_t sc, int64_t batch);

}  // namespace hpt::cuda
