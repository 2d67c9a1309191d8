// Shared pieces of the CUDA kernels: launch helpers (ceil_div, grid-stride loops, launch_linear),
// the strided indexer of elementwise kernels, operands that may be host numbers, warp and block
// reductions in a fixed order, device math overloads and the deferred bad-value report.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstdint>

#include "engine/core/dtype.h"
#include "engine/core/tensor.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/runtime.h"

namespace hpt::cuda {

constexpr int kThreads = 256;
constexpr int kMaxDims = 8;

HPT_HD constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// for (i in [0, n)) spread over the whole grid; launches may use fewer threads than elements.
#define HPT_GRID_STRIDE(i, n) \
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

// Enough blocks for one element per thread, capped (the grid-stride loop covers the rest).
inline unsigned grid_for(int64_t n, int threads = kThreads) {
    return unsigned(std::min<int64_t>(std::max<int64_t>(ceil_div(n, threads), 1), int64_t(1) << 20));
}

// Launches kernel(n, args...) over n elements on the current stream; nothing when n == 0.
template <class Kernel, class... Args>
void launch_linear(const char* name, Kernel kernel, int64_t n, const Args&... args) {
    if (n <= 0) return;
    kernel<<<grid_for(n), kThreads, 0, current_stream()>>>(n, args...);
    HPT_CUDA_LAUNCH_CHECK(name);
}

// Lets `kernel` launch with `bytes` of dynamic shared memory. The default limit of 48 KiB, and the
// device's opt-in limit above it, bound the kernel's static shared memory plus the dynamic: a kernel
// with 16 KiB of static arrays fails to launch with 40 KiB of dynamic memory unless it opts in. A
// request past the opt-in limit is an error naming `what...` (message pieces, joined only when it
// fails).
template <class Kernel, class... What>
void allow_dynamic_smem(Kernel kernel, size_t bytes, const What&... what) {
    cudaFuncAttributes attr{};
    HPT_CUDA_CHECK(cudaFuncGetAttributes(&attr, kernel));
    const size_t total = bytes + attr.sharedSizeBytes;
    if (total <= 48 * 1024) return;
    int optin = 0;
    HPT_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, current_device()));
    HPT_CHECK(total <= size_t(optin), what..., " need ", bytes, " bytes of shared memory (", attr.sharedSizeBytes,
              " more in static arrays); the device has ", optin);
    HPT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

// ---------------------------------------------------------------- integer division

// n / d for a fixed d and 0 <= n < 2^31 by a multiply-high and a shift (Granlund and
// Montgomery's method): a few instructions instead of the ~20 of a 32-bit division, for kernels
// whose index arithmetic would otherwise cost more than their memory traffic.
struct FastDiv {
    uint32_t m = 1, s = 0;
    FastDiv() = default;
    explicit FastDiv(int64_t d) {
        HPT_CHECK(d >= 1 && d < (int64_t(1) << 31), "FastDiv: divisor ", d, " out of range");
        while ((uint64_t(1) << s) < uint64_t(d)) ++s;
        m = uint32_t(((uint64_t(1) << 32) * ((uint64_t(1) << s) - uint64_t(d))) / uint64_t(d) + 1);
    }
    __device__ uint32_t div(uint32_t n) const { return (__umulhi(n, m) + n) >> s; }
};

// The same interface for 64-bit indices.
struct WideDiv {
    int64_t d = 1;
    WideDiv() = default;
    explicit WideDiv(int64_t v) : d(v) {}
    __device__ int64_t div(int64_t n) const { return n / d; }
};

// ---------------------------------------------------------------- strided operands

// Maps the linear index of an output element (row-major) to the element offset of each operand.
// Operand 0 is the output; inputs broadcast to its shape (stride 0). Dims are stored innermost
// first, size-1 dims dropped and dims merged where every operand steps through them as one run,
// so contiguous operands end up with one dim and no division.
template <int N>
struct Indexer {
    int ndim = 0;
    int64_t size[kMaxDims] = {};
    int64_t stride[N][kMaxDims] = {};

    __device__ void offsets(int64_t i, int64_t (&off)[N]) const {
#pragma unroll
        for (int k = 0; k < N; ++k) off[k] = 0;
        if (ndim == 1) {
#pragma unroll
            for (int k = 0; k < N; ++k) off[k] = i * stride[k][0];
            return;
        }
#pragma unroll
        for (int d = 0; d < kMaxDims; ++d) {
            if (d >= ndim) break;
            const int64_t q = i / size[d];
            const int64_t c = i - q * size[d];
            i = q;
#pragma unroll
            for (int k = 0; k < N; ++k) off[k] += c * stride[k][d];
        }
    }
};

// Host side. A 0-dim CPU tensor (a number) gets stride 0; its value travels by Arg below.
template <int N>
Indexer<N> make_indexer(const std::array<const Tensor*, N>& ops) {
    Indexer<N> ix;
    const Shape& out = ops[0]->shape();
    const int nd = int(out.size());
    int64_t size[64];
    int64_t stride[N][64];
    HPT_CHECK(nd <= 64, "tensors of rank ", nd, " are not supported");
    int m = 0;
    for (int d = nd - 1; d >= 0; --d) {
        if (out[size_t(d)] == 1) continue;
        size[m] = out[size_t(d)];
        for (int k = 0; k < N; ++k) {
            const Tensor& t = *ops[size_t(k)];
            const int td = d - (nd - int(t.dim()));
            const bool bcast = td < 0 || t.shape()[size_t(td)] == 1;
            stride[k][m] = bcast ? 0 : t.strides()[size_t(td)];
        }
        ++m;
    }
    int w = 0;
    for (int d = 1; d < m; ++d) {
        bool merge = true;
        for (int k = 0; k < N && merge; ++k) merge = stride[k][d] == stride[k][w] * size[w];
        if (merge) {
            size[w] *= size[d];
        } else {
            ++w;
            size[w] = size[d];
            for (int k = 0; k < N; ++k) stride[k][w] = stride[k][d];
        }
    }
    const int merged = m == 0 ? 0 : w + 1;
    HPT_CHECK(merged <= kMaxDims, "CUDA elementwise kernels take at most ", kMaxDims,
              " non-mergeable dims; got a tensor of shape ", shape_str(out), " with strides ",
              shape_str(ops[0]->strides()), " (make it contiguous first)");
    ix.ndim = merged == 0 ? 1 : merged;  // a single element: one dim of size 1
    for (int d = 0; d < merged; ++d) {
        ix.size[d] = size[d];
        for (int k = 0; k < N; ++k) ix.stride[k][d] = stride[k][d];
    }
    if (merged == 0) {
        ix.size[0] = 1;
        for (int k = 0; k < N; ++k) ix.stride[k][0] = 0;
    }
    return ix;
}

// An input operand: a device pointer, or (p == nullptr) a number read on the host.
template <class T>
struct Arg {
    const T* p;
    T v;
    __device__ T at(int64_t off) const { return p ? p[off] : v; }
};

inline bool is_number(const Tensor& t) { return t.dim() == 0 && t.device().is_cpu(); }

template <class T>
Arg<T> arg_of(const Tensor& t) {
    if (t.device().is_cpu()) {
        HPT_CHECK(is_number(t), "a CUDA kernel was given a CPU tensor of shape ", shape_str(t.shape()),
                  " (only 0-dim CPU tensors may accompany CUDA tensors)");
        return {nullptr, *static_cast<const T*>(t.data_ptr())};
    }
    return {static_cast<const T*>(t.data_ptr()), T()};
}

// ---------------------------------------------------------------- device math

__device__ inline float d_exp(float x) { return expf(x); }
__device__ inline double d_exp(double x) { return exp(x); }
__device__ inline float d_log(float x) { return logf(x); }
__device__ inline double d_log(double x) { return log(x); }
__device__ inline float d_sqrt(float x) { return sqrtf(x); }
__device__ inline double d_sqrt(double x) { return sqrt(x); }
__device__ inline float d_pow(float a, float b) { return powf(a, b); }
__device__ inline double d_pow(double a, double b) { return pow(a, b); }
template <class C>
__device__ inline bool d_isnan(C v) { return v != v; }  // false for integers

template <class T>
__device__ inline T neg_inf() { return -__int_as_float(0x7f800000); }
template <>
__device__ inline double neg_inf<double>() { return -__longlong_as_double(0x7ff0000000000000LL); }

// ---------------------------------------------------------------- reductions in a fixed order

struct SumOp {
    template <class T>
    __device__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {  // NaN wins, so a NaN input gives a NaN maximum
    template <class T>
    __device__ T operator()(T a, T b) const { return (a != a || a > b) ? a : b; }
};

template <class T, class Op>
__device__ inline T warp_reduce(T v, Op op) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_down_sync(0xffffffffu, v, o));
    return v;
}

// Reduces one value per thread of the block; every thread gets the result. The shuffle pattern
// is fixed, so the result does not depend on timing. Calls may follow each other directly.
template <class T, class Op>
__device__ inline T block_reduce(T v, Op op) {
    __shared__ T warp_part[32];
    __shared__ T result;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int nwarps = (blockDim.x + 31) >> 5;
    v = warp_reduce(v, op);
    __syncthreads();  // earlier readers of warp_part/result are done
    if (lane == 0) warp_part[warp] = v;
    __syncthreads();
    if (warp == 0) {
        T w = lane < nwarps ? warp_part[lane] : warp_part[0];
        // Lanes past nwarps repeat warp 0's value; only lane 0's result is kept, and the shuffle
        // pattern reads lanes >= nwarps only for lanes that are themselves discarded.
        if (nwarps < 32) {
            for (int o = 16; o > 0; o >>= 1) {
                const T other = __shfl_down_sync(0xffffffffu, w, o);
                if (lane + o < nwarps) w = op(w, other);
            }
        } else {
            w = warp_reduce(w, op);
        }
        if (lane == 0) result = w;
    }
    __syncthreads();
    return result;
}

// ---------------------------------------------------------------- deferred bad values

// Records the first bad value of any kernel on this device (runtime.h); the host throws at the
// next synchronisation point. The caller skips the element.
__device__ inline void report_bad_value(DeviceErrorWord* w, int op, long long value, long long position,
                                        long long bound) {
    if (atomicCAS(&w->flag, 0u, 1u) == 0u) {
        w->op = op;
        w->value = value;
        w->position = position;
        w->bound = bound;
    }
}

}  // namespace hpt::cuda
