// Row-major GEMM on the CPU: C = alpha * op(A) op(B) + beta * C.
// f32 goes to oneDNN's sgemm (measured faster than OpenBLAS on our conv-sized shapes, see
// bench/results/cpu/README.md); f64 is a plain loop, used by tests and gradient checks.
#pragma once
#include <cstdint>

namespace hpt {

void cpu_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
              int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void cpu_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
              int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

}  // namespace hpt
