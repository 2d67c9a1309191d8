// The InfoNCE forward partials on TF32 tensor cores (info_nce.h says what they are), in the
// flash-attention form with V = the queue: per block 64 query rows and one queue chunk; each of
// the 4 warps owns 16 query rows and, per tile of 64 queue rows, computes its 16 x 64 logits with
// mma.sync, folds them into a running (max, sum) per row, rescales its running o and adds P U.
// Logits, weights and o never leave registers; only the q and queue tiles go through shared
// memory, stored there already rounded to TF32.
//
// Written and compiled without a GPU to run it: the fragment layouts below are the whole risk,
// and the [cuda] TF32 test in tests/kernels/test_info_nce.cpp is what checks them.
//
// Fragment layouts relied on: PTX ISA, "Matrix Fragments for mma.m16n8k8" (section 9.7.14.5.7 in
// the 8.x/9.x manuals), .tf32 multiplicands and .f32 accumulators, Figures 72, 75 and 77. With
// g = laneid >> 2 (groupID) and t = laneid % 4 (threadID_in_group):
//   A (16 x 8, row):  a0 = A[g][t], a1 = A[g+8][t], a2 = A[g][t+4], a3 = A[g+8][t+4]
//   B (8 x 8, col):   b0 = B[t][g], b1 = B[t+4][g]
//   C/D (16 x 8):     c0 = C[g][2t], c1 = C[g][2t+1], c2 = C[g+8][2t], c3 = C[g+8][2t+1]
// The logits' accumulator becomes the A operand of P U without a trip through shared memory by
// permuting the 8 k indices of each step: A[r][t] = P[r][2t], A[r][t+4] = P[r][2t+1] (so a0..a3 =
// c0, c2, c1, c3 of the logits' tile) and, to match, B[t][n] = U[2t][n], B[t+4][n] = U[2t+1][n].
// A sum over k does not depend on the order of its terms, so P U is unchanged.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/info_nce.h"
#include <cstdint>

namespace hpt::cuda::info_nce_detail {
namespace {

constexpr int kWarps = 4;  // 16 query rows each
constexpr int kBlockThreads = kWarps * 32;
// Row stride Dp + 4 words: with Dp a multiple of 32 the fragment loads below (8 rows x 4
// consecutive words, or 4 row pairs x 8 words) hit 32 different banks.
constexpr int kPad = 4;

__device__ __forceinline__ uint32_t to_tf32(float x) {
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
}

// c += A B for one m16n8k8 step (layouts above).
__device__ __forceinline__ void mma_tf32(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Rows [r0, r0 + 64) of a [rows, D] matrix into shared memory as TF32, row stride Dp + kPad;
// rows past `rows` and columns past D (up to Dp) read as zeros, which adds nothing to any product.
__device__ void load_tile_tf32(uint32_t* s, const float* g, int64_t r0, int64_t rows, int D, int Dp) {
    const int ld = Dp + kPad;
    for (int e = threadIdx.x; e < kTile * Dp; e += blockDim.x) {
        const int r = e / Dp, c = e % Dp;
        s[r * ld + c] = r0 + r < rows && c < D ? to_tf32(g[(r0 + r) * D + c]) : 0u;
    }
}

// Sum (or max) over the 4 lanes of a quad (same g, t = 0..3): the lanes that share a row.
__device__ __forceinline__ float quad_max(float v) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quad_sum(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// kDCap: a compile-time bound on Dp (64, 128 or 256) that sizes the o accumulators; the grid is
// (row tiles) x (chunks), kBlockThreads threads.
template <int kDCap>
__global__ void __launch_bounds__(kBlockThreads)
    partial_tf32(const float* q, const float* queue, int64_t N, int64_t K, int D, int Dp, float invT, int64_t chunk,
                 float* part_m, float* part_s, float* part_o) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    __trap();  // mma .tf32 needs sm_80; the host never launches this there
#else
    extern __shared__ uint32_t tc_smem[];
    const int ld = Dp + kPad;
    uint32_t* Qs = tc_smem;
    uint32_t* Us = tc_smem + kTile * ld;
    const int64_t row0 = int64_t(blockIdx.x) * kTile, c = blockIdx.y;
    const int64_t j_begin = c * chunk, j_end = min(K, j_begin + chunk);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane >> 2, t = lane & 3;
    const int wr = warp * 16;  // the warp's first row in the tile
    constexpr int kDT = kDCap / 8;  // 8-column tiles of o

    load_tile_tf32(Qs, q, row0, N, D, Dp);
    // Per thread: rows wr + g (h = 0) and wr + g + 8 (h = 1) of the running max, sum and o.
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
    float o[kDT][4];
#pragma unroll
    for (int dt = 0; dt < kDT; ++dt) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.f;

    for (int64_t j0 = j_begin; j0 < j_end; j0 += kTile) {
        __syncthreads();  // the previous tile's P U is done with Us
        load_tile_tf32(Us, queue, j0, j_end, D, Dp);
        __syncthreads();

        // s[nt] = logits of rows (wr + g, wr + g + 8) x queue rows j0 + nt*8 + (2t, 2t + 1).
        float s[8][4];
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
        for (int k0 = 0; k0 < Dp; k0 += 8) {
            const uint32_t* qa = Qs + (wr + g) * ld + k0 + t;
            const uint32_t a0 = qa[0], a1 = qa[8 * ld], a2 = qa[4], a3 = qa[8 * ld + 4];
#pragma unroll
            for (int nt = 0; nt < 8; ++nt) {
                // B[k][n] = U[nt*8 + n][k0 + k]
                const uint32_t* ub = Us + (nt * 8 + g) * ld + k0 + t;
                mma_tf32(s[nt], a0, a1, a2, a3, ub[0], ub[4]);
            }
        }

        // Online softmax: mask the tile's tail, new max, rescale, weights in place of the logits.
        float mt[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int nt = 0; nt < 8; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int64_t j = j0 + nt * 8 + 2 * t + (e & 1);
                s[nt][e] = j < j_end ? s[nt][e] * invT : -INFINITY;
                mt[e >> 1] = fmaxf(mt[e >> 1], s[nt][e]);
            }
        float alpha[2], ts[2] = {0.f, 0.f};
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const float mn = fmaxf(m[h], quad_max(mt[h]));  // finite: queue row j0 is always valid
            alpha[h] = m[h] == -INFINITY ? 0.f : __expf(m[h] - mn);
            m[h] = mn;
        }
#pragma unroll
        for (int nt = 0; nt < 8; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const float p = s[nt][e] == -INFINITY ? 0.f : __expf(s[nt][e] - m[e >> 1]);
                s[nt][e] = p;
                ts[e >> 1] += p;
            }
#pragma unroll
        for (int h = 0; h < 2; ++h) l[h] = l[h] * alpha[h] + quad_sum(ts[h]);
#pragma unroll
        for (int dt = 0; dt < kDT; ++dt) {
            o[dt][0] *= alpha[0], o[dt][1] *= alpha[0];
            o[dt][2] *= alpha[1], o[dt][3] *= alpha[1];
        }

        // o += P U, k over the tile's 64 queue rows in 8 steps (permuted k order: see the top).
#pragma unroll
        for (int kk = 0; kk < 8; ++kk) {
            const uint32_t a0 = to_tf32(s[kk][0]), a1 = to_tf32(s[kk][2]), a2 = to_tf32(s[kk][1]),
                           a3 = to_tf32(s[kk][3]);
            const uint32_t* ub = Us + (kk * 8 + 2 * t) * ld + g;  // B[t][n] = U[kk*8 + 2t][dt*8 + n]
#pragma unroll
            for (int dt = 0; dt < kDT; ++dt)
                if (dt * 8 < Dp) mma_tf32(o[dt], a0, a1, a2, a3, ub[dt * 8], ub[ld + dt * 8]);
        }
    }

#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int64_t row = row0 + wr + g + 8 * h;
        if (row >= N) continue;
        if (t == 0) part_m[c * N + row] = m[h], part_s[c * N + row] = l[h];
        float* po = part_o + (c * N + row) * D;
#pragma unroll
        for (int dt = 0; dt < kDT; ++dt) {
            const int col = dt * 8 + 2 * t;
            if (col < D) po[col] = o[dt][2 * h];
            if (col + 1 < D) po[col + 1] = o[dt][2 * h + 1];
        }
    }
#endif
}

template <int kDCap>
void launch(const float* q, const float* queue, int64_t N, int64_t K, int D, int Dp, float invT, int64_t chunk,
            float* part_m, float* part_s, float* part_o, cudaStream_t stream) {
    const size_t smem = size_t(2 * kTile * (Dp + kPad)) * sizeof(uint32_t);
    HPT_CUDA_CHECK(
        cudaFuncSetAttribute(partial_tf32<kDCap>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    const dim3 grid(unsigned(ceil_div(N, kTile)), unsigned(ceil_div(K, chunk)));
    partial_tf32<kDCap><<<grid, kBlockThreads, smem, stream>>>(q, queue, N, K, D, Dp, invT, chunk, part_m, part_s,
                                                                part_o);
    HPT_CUDA_LAUNCH_CHECK("info_nce partial (tf32)");
}

}  // namespace

void launch_partial_tf32(const float* q, const float* queue, int64_t N, int64_t K, int64_t D, float invT,
                         int64_t chunk, float* part_m, float* part_s, float* part_o, cudaStream_t stream) {
    const int Dp = int(ceil_div(D, 8) * 8);
    if (Dp <= 64)
        launch<64>(q, queue, N, K, int(D), Dp, invT, chunk, part_m, part_s, part_o, stream);
    else if (Dp <= 128)
        launch<128>(q, queue, N, K, int(D), Dp, invT, chunk, part_m, part_s, part_o, stream);
    else
        launch<kMaxD>(q, queue, N, K, int(D), Dp, invT, chunk, part_m, part_s, part_o, stream);
}

}  // namespace hpt::cuda::info_nce_detail
