// The tile load both CUDA InfoNCE forward kernels share (info_nce.cu, info_nce_tc.cu).
#pragma once
#include <cstdint>

#include "kernels/cuda/info_nce.h"

namespace hpt::cuda::info_nce_detail {

// Rows [r0, r0 + kTile) of a row-major [rows, D] float matrix into shared memory at row stride
// ld, each value through conv; rows past `rows` and columns [D, Dp) are zeros. Element r Dp + c
// advances by blockDim.x per step with the row and column carried along (no division per element;
// a 64-bit one is a software routine), unrolled so that several loads are in flight at once.
// Any Dp works: a step adds less than Dp to the column, so one carry at most (the TF32 kernel has
// 128 threads and Dp up to 256).
template <class T, class Conv>
__device__ __forceinline__ void load_tile_rows(T* __restrict__ s, const float* __restrict__ g, int64_t r0,
                                               int64_t rows, int D, int Dp, int ld, Conv conv) {
    const int valid = rows - r0 < kTile ? int(rows - r0) : kTile;
    const int step_r = int(blockDim.x) / Dp, step_c = int(blockDim.x) % Dp;
    int r = int(threadIdx.x) / Dp, c = int(threadIdx.x) % Dp;
    const float* src = g + r0 * D;
#pragma unroll 4
    for (; r < kTile;) {
        s[r * ld + c] = r < valid && c < D ? conv(__ldg(src + int64_t(r) * D + c)) : T(0);
        r += step_r, c += step_c;
        if (c >= Dp) c -= Dp, ++r;
    }
}

}  // namespace hpt::cuda::info_nce_detail
