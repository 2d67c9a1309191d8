#include "kernels/cpu/gemm.h"

#include <cstdint>
#include <dnnl.h>

#include <vector>

#include "engine/core/error.h"
#include "kernels/cpu/parallel.h"

namespace hpt {

void cpu_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0) {  // C = beta * C; oneDNN rejects K = 0 as an invalid argument
        for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return;
    }
    const dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    HPT_CHECK(st == dnnl_success, "oneDNN sgemm failed (status ", int(st), ") for M=", M, " N=", N, " K=", K);
}

void cpu_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
              const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
    parallel_for(M, 4, [&](int64_t i0, int64_t i1) {
        std::vector<double> row(static_cast<size_t>(N));
        for (int64_t i = i0; i < i1; ++i) {
            std::fill(row.begin(), row.end(), 0.0);
            for (int64_t k = 0; k < K; ++k) {
                const double a = ta ? A[k * lda + i] : A[i * lda + k];
                if (tb) {
                    for (int64_t j = 0; j < N; ++j) row[size_t(j)] += a * B[j * ldb + k];
                } else {
                    const double* b = B + k * ldb;
                    for (int64_t j = 0; j < N; ++j) row[size_t(j)] += a * b[j];
                }
            }
            double* c = C + i * ldc;
            for (int64_t j = 0; j < N; ++j) c[j] = alpha * row[size_t(j)] + (beta == 0.0 ? 0.0 : beta * c[j]);
        }
    });
}

}  // namespace hpt
