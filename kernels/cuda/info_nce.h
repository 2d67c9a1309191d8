// What the two forward paths of the CUDA InfoNCE share: info_nce.cu (FP32 FMA, the default) and
// info_nce_tc.cu (TF32 tensor cores, when cuda_tf32() is on) write the same per-chunk partials,
// which info_nce.cu then merges.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace hpt::cuda::info_nce_detail {

constexpr int kTile = 64;    // query rows per block and queue rows per step; chunks are whole tiles
constexpr int kMaxD = 256;   // feature sizes above this are refused (shared memory, registers)

// Partials of query row i over queue chunk c (queue rows [c chunk, min(K, (c + 1) chunk))), with
// s_ij = q_i . u_j / T:
//   part_m[c N + i]         = max_j s_ij
//   part_s[c N + i]         = sum_j exp(s_ij - part_m)
//   part_o[(c N + i) D + d] = sum_j exp(s_ij - part_m) u_jd
// chunk is a multiple of kTile; every chunk holds at least one queue row, so part_m is finite.
//
// The TF32 path: q and the queue are rounded to TF32 (cvt.rna, relative error <= 2^-11), and so
// are the weights exp(s_ij - m) before they multiply the queue; products accumulate in FP32.
// D needs no particular multiple (features are zero-padded to a multiple of 8 in shared memory).
// Needs compute capability >= 8.0 (the caller checks). Returns whether it took the pipelined
// kernel (cuda_info_nce_pipelined() asked for it and the inputs allow it).
bool launch_partial_tf32(const float* q, const float* queue, int64_t N, int64_t K, int64_t D, float invT,
                         int64_t chunk, float* part_m, float* part_s, float* part_o, cudaStream_t stream);

// Whether the last CUDA InfoNCE forward took the pipelined TF32 kernel (false after an FP32 one),
// for tests and benchmark labels.
bool last_partial_tf32_pipelined();

}  // namespace hpt::cuda::info_nce_detail
