// CUDA matmul (2-D and batched) and linear (x w^T + b) through cuBLAS, and the row-major GEMM
// other kernels call (kernels/cuda/gemm.h). Mirrors
// kernels/cpu/matmul.cpp, including which operands go to GEMM transposed instead of copied.
//
// cuBLAS is column-major and our tensors row-major. A row-major matrix is the column-major view of
// its transpose, so C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T: the operands swap places
// and M and N swap roles, with no data movement.
//
// One cuBLAS handle per device, created on first use and bound before every call to the current
// stream and to a 32 MiB workspace (cuBLAS resets the workspace whenever the stream is set). f32
// uses TF32 tensor cores only when set_cuda_tf32(true) (or HPT_CUDA_TF32=1); otherwise it is plain
// FP32 math, which matches the CPU to f32 rounding.
#include <cstdint>
#include <climits>
#include <mutex>
#include <vector>

#include "engine/ops/registry.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/copy.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/kernel_entry.h"
#include "kernels/layout.h"

namespace hpt::cuda {
namespace {

constexpr size_t kBlasWorkspace = size_t(32) << 20;

struct BlasState {
    cublasHandle_t handle = nullptr;
    void* workspace = nullptr;
};

// The current device's handle, bound to its current stream, workspace and math mode.
cublasHandle_t blas() {
    static std::mutex mu;
    static std::vector<BlasState>* states = new std::vector<BlasState>(size_t(cuda_device_count()));
    const int d = current_device();
    BlasState* s;
    {
        std::lock_guard<std::mutex> lock(mu);
        s = &(*states)[size_t(d)];
        if (!s->handle) {
            HPT_CUDA_CHECK(cublasCreate(&s->handle));
            s->workspace = allocator_for(Device::cuda(d)).allocate(kBlasWorkspace);  // kept for the process
        }
    }
    HPT_CUDA_CHECK(cublasSetStream(s->handle, current_stream()));
    HPT_CUDA_CHECK(cublasSetWorkspace(s->handle, s->workspace, kBlasWorkspace));
    HPT_CUDA_CHECK(cublasSetMathMode(s->handle, cuda_tf32() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    return s->handle;
}

int as_int(int64_t v, const char* what) {
    HPT_CHECK(v >= 0 && v <= INT_MAX, "cuBLAS GEMM: ", what, " = ", v, " exceeds the 32-bit range of cuBLAS");
    return int(v);
}

}  // namespace

template <class T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, int64_t sa,
          const T* B, int64_t ldb, int64_t sb, T beta, T* C, int64_t ldc, int64_t sc, int64_t batch) {
    cublasHandle_t h = blas();
    const cublasOperation_t oa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, ob = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int m = as_int(N, "N"), n = as_int(M, "M"), k = as_int(K, "K");
    const int la = as_int(lda, "lda"), lb = as_int(ldb, "ldb"), lc = as_int(ldc, "ldc");
    if constexpr (std::is_same<T, float>::value) {
        if (batch == 1) {
            HPT_CUDA_CHECK(cublasSgemm(h, ob, oa, m, n, k, &alpha, B, lb, A, la, &beta, C, lc));
        } else {
            HPT_CUDA_CHECK(cublasSgemmStridedBatched(h, ob, oa, m, n, k, &alpha, B, lb, sb, A, la, sa, &beta, C, lc,
                                                     sc, as_int(batch, "batch")));
        }
    } else {
        if (batch == 1) {
            HPT_CUDA_CHECK(cublasDgemm(h, ob, oa, m, n, k, &alpha, B, lb, A, la, &beta, C, lc));
        } else {
            HPT_CUDA_CHECK(cublasDgemmStridedBatched(h, ob, oa, m, n, k, &alpha, B, lb, sb, A, la, sa, &beta, C, lc,
                                                     sc, as_int(batch, "batch")));
        }
    }
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, int64_t,
                          const float*, int64_t, int64_t, float, float*, int64_t, int64_t, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, int64_t,
                           const double*, int64_t, int64_t, double, double*, int64_t, int64_t, int64_t);

namespace {

void matmul_cuda(const KernelArgs& args) {
    const Tensor &a = args.in[0], &b = args.in[1];
    const Tensor& c = args.out[0];
    const bool batched = a.dim() == 3;
    const int64_t B = batched ? a.size(0) : 1;
    const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
    if (c.numel() == 0) return;
    HPT_DISPATCH_FLOAT(a.dtype(), "matmul", [&] {
        using T = scalar_t;
        if (K == 0) return zero_on_device(c);
        const GemmOperand ma = gemm_operand(a), mb = gemm_operand(b);
        gemm<T>(ma.trans, mb.trans, M, N, K, T(1), a.data<T>(), ma.ld, batched ? a.stride(0) : 0, b.data<T>(), mb.ld,
                batched ? b.stride(0) : 0, T(0), c.data<T>(), N, M * N, B);
    });
}

template <class T>
__global__ void bias_rows_kernel(int64_t n, const T* bias, int64_t N, T* y) {
    HPT_GRID_STRIDE(i, n) { y[i] = bias[i % N]; }
}

void linear_cuda(const KernelArgs& args) {
    const Tensor &x = args.in[0], &w = args.in[1], &bias = args.in[2];
    const Tensor& y = args.out[0];
    const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
    if (y.numel() == 0) return;
    HPT_DISPATCH_FLOAT(x.dtype(), "linear", [&] {
        using T = scalar_t;
        T beta = 0;
        if (bias.defined()) {
            launch_linear("linear_bias", bias_rows_kernel<T>, M * N, bias.data<T>(), N, y.data<T>());
            beta = 1;
        } else if (K == 0) {
            return zero_on_device(y);
        }
        if (K == 0) return;
        const GemmOperand mx = gemm_operand(x), mw = gemm_operand(w);
        // y = x w^T: w is [N, K] row-major, so op(B) is its transpose.
        gemm<T>(mx.trans, !mw.trans, M, N, K, T(1), x.data<T>(), mx.ld, 0, w.data<T>(), mw.ld, 0, beta, y.data<T>(),
                N, 0, 1);
    });
}

HPT_REGISTER_CUDA_KERNEL(matmul, matmul_cuda);
HPT_REGISTER_CUDA_KERNEL(linear, linear_cuda);

}  // namespace
}  // namespace hpt::cuda
