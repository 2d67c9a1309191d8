// The fused InfoNCE of MoCo on CUDA (DESIGN.md §4): the N x (K+1) logits are never stored, and
// the queue is read once for the loss and dq (the one-pass form; kernels/cpu/info_nce.cpp is the
// specification, with the op's third output o_i = sum_j p_ij u_j).
//
// Forward, three kernels:
//   partial:  grid (row tiles of 64 queries) x (chunks of the queue). A block keeps its 64 query
//             rows in shared memory and walks its chunk in tiles of 64 queue rows: the tile's
//             logits, a running (max, sum) per query (online log-sum-exp) and a running
//             o = sum_j exp(s_ij - max) u_j, rescaled when the max grows (flash attention with
//             V = the queue). It writes one (max, sum, o) per query and chunk (info_nce.h).
//             Two versions: FP32 FMA here (the default), TF32 tensor cores in info_nce_tc.cu
//             when cuda_tf32() is on.
//   merge:    per query, the positive logit q.k/T (FP32) and the chunks' partials, each chunk
//             weighted by exp(its max - the row's max), give lse, the row's loss and o.
//   mean:     one block sums the rows' losses in a fixed order.
// Backward: dq = scale (o + (p0 - 1) k) and dk = scale (p0 - 1) q, elementwise, with
// scale = g/(N T) and p0 = exp(q.k/T - lse). dqueue (not needed by MoCo) recomputes the logits
// per queue tile over all queries, in FP32 whatever the TF32 switch says.
// Every sum runs in a fixed order (warp shuffles with fixed offsets, block reductions of a fixed
// shape, chunks in index order), so the results are deterministic.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "engine/ops/attrs.h"
#include "engine/ops/registry.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/info_nce.h"
#include "kernels/cuda/info_nce_tile.cuh"
#include "kernels/cuda/kernel_entry.h"

namespace hpt::cuda {
namespace {

using info_nce_detail::kMaxD;
using info_nce_detail::kTile;
// Shared-memory row stride: the smallest odd number of words >= D. The 16 threads that share a
// logits row read queue rows tx + 16 c (tile_dot); an odd stride puts them in 16 different banks.
__host__ __device__ inline int64_t row_stride(int64_t D) { return D | 1; }
constexpr int kCols = kMaxD / 16;  // o columns per thread: tx + 16 e

size_t tile_smem(int64_t D) { return size_t(2 * kTile * row_stride(D)) * sizeof(float); }

// Loads rows [r0, r0 + 64) of a [rows, D] matrix into smem (row-major, row_stride(D)); rows past
// the end read as zeros.
__device__ void load_tile(float* s, const float* g, int64_t r0, int64_t rows, int64_t D) {
    info_nce_detail::load_tile_rows(s, g, r0, rows, int(D), int(D), int(row_stride(D)), [](float x) { return x; });
}

// acc[r][c] = sum_d A[ty*4+r][d] * B[tx+16c][d] for the thread (ty, tx) of a 16x16 layout.
__device__ void tile_dot(const float* A, const float* B, int64_t D, float (&acc)[4][4]) {
    const int64_t ld = row_stride(D);
    const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int c = 0; c < 4; ++c) acc[r][c] = 0.f;
    for (int64_t d = 0; d < D; ++d) {
        float a[4], b[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) a[i] = A[(ty * 4 + i) * ld + d], b[i] = B[(tx + 16 * i) * ld + d];
#pragma unroll
        for (int r = 0; r < 4; ++r)
#pragma unroll
            for (int c = 0; c < 4; ++c) acc[r][c] = fmaf(a[r], b[c], acc[r][c]);
    }
}

// acc[r][e] += sum_j P[ty*4 + r][j] * T[j][tx + 16 e] over the 64 rows j of a shared-memory tile T
// (row stride row_stride(D)): the P-times-tile product of the o partials and of dqueue.
__device__ void add_p_times_tile(const float (*P)[kTile + 1], const float* T, int64_t D, float (&acc)[4][kCols]) {
    const int64_t ld = row_stride(D);
    const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
    for (int64_t j = 0; j < kTile; ++j) {
#pragma unroll
        for (int e = 0; e < kCols; ++e) {
            const int64_t col = tx + 16 * e;
            if (col >= D) break;
            const float t = T[j * ld + col];
#pragma unroll
            for (int r = 0; r < 4; ++r) acc[r][e] = fmaf(P[ty * 4 + r][j], t, acc[r][e]);
        }
    }
}

// Reductions over the 16 threads (tx) that share a row: lanes differ in their low 4 bits.
__device__ float row_max(float v) {
#pragma unroll
    for (int o = 8; o >= 1; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ float row_sum(float v) {
#pragma unroll
    for (int o = 8; o >= 1; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Thread (ty, tx) of the 16 x 16 layout owns rows ty*4..+3 of the block's logits tile (columns
// tx + 16 c) and of o (columns tx + 16 e).
// Two blocks per SM: 128 registers a thread at most (left free, the compiler took 146; bounded,
// nvcc 13 fits it in 128 with a 4-byte spill).
__global__ void __launch_bounds__(256, 2)
    fwd_partial(const float* q, const float* queue, int64_t N, int64_t K, int64_t D, float invT, int64_t chunk,
                float* part_m, float* part_s, float* part_o) {
    extern __shared__ float smem[];
    float* Qs = smem;
    float* Us = smem + kTile * row_stride(D);
    __shared__ float Ps[kTile][kTile + 1];
    const int64_t row0 = int64_t(blockIdx.x) * kTile, c = blockIdx.y;
    const int64_t j_begin = c * chunk, j_end = min(K, j_begin + chunk);
    const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
    load_tile(Qs, q, row0, N, D);
    float m[4], s[4], o[4][kCols];
#pragma unroll
    for (int r = 0; r < 4; ++r) {
        m[r] = -INFINITY, s[r] = 0.f;
#pragma unroll
        for (int e = 0; e < kCols; ++e) o[r][e] = 0.f;
    }
    for (int64_t j0 = j_begin; j0 < j_end; j0 += kTile) {
        __syncthreads();  // the previous tile's P U is done with Us and Ps
        load_tile(Us, queue, j0, j_end, D);
        __syncthreads();
        float acc[4][4], alpha[4];
        tile_dot(Qs, Us, D, acc);
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            float tmax = -INFINITY;
#pragma unroll
            for (int cc = 0; cc < 4; ++cc) {
                acc[r][cc] = j0 + tx + 16 * cc < j_end ? acc[r][cc] * invT : -INFINITY;
                tmax = fmaxf(tmax, acc[r][cc]);
            }
            const float mn = fmaxf(m[r], row_max(tmax));  // finite: queue row j0 is always valid
            float ts = 0.f;
#pragma unroll
            for (int cc = 0; cc < 4; ++cc) {
                const float p = acc[r][cc] == -INFINITY ? 0.f : __expf(acc[r][cc] - mn);
                Ps[ty * 4 + r][tx + 16 * cc] = p;
                ts += p;
            }
            alpha[r] = m[r] == -INFINITY ? 0.f : __expf(m[r] - mn);
            s[r] = s[r] * alpha[r] + row_sum(ts);
            m[r] = mn;
        }
        __syncthreads();
#pragma unroll
        for (int r = 0; r < 4; ++r)
#pragma unroll
            for (int e = 0; e < kCols; ++e) o[r][e] *= alpha[r];
        add_p_times_tile(Ps, Us, D, o);
    }
#pragma unroll
    for (int r = 0; r < 4; ++r) {
        const int64_t row = row0 + ty * 4 + r;
        if (row >= N) continue;
        if (tx == 0) part_m[c * N + row] = m[r], part_s[c * N + row] = s[r];
#pragma unroll
        for (int e = 0; e < kCols; ++e) {
            const int64_t col = tx + 16 * e;
            if (col < D) part_o[(c * N + row) * D + col] = o[r][e];
        }
    }
}

// a . b over D entries by one warp, every lane getting the result: lane l sums entries l, l + 32,
// ... and the lanes' sums are added by a fixed butterfly, so the result does not depend on timing.
// (A single thread's chain of D dependent fmas, which every thread of the merge and of the
// backward's finishing kernel used to run for its row, is D fma latencies long.)
__device__ float warp_dot(const float* a, const float* b, int64_t D) {
    const int lane = threadIdx.x & 31;
    float d = 0.f;
    for (int64_t i = lane; i < D; i += 32) d = fmaf(a[i], b[i], d);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
    return d;
}

constexpr int kMergeThreads = 128;
constexpr int kMaxChunks = 1024;  // chunk_size() makes at most its block target, which HPT_INFONCE_BLOCKS caps here

// One block per query row. The row's overall max M (the positive logit's and the chunks') comes
// first, so each chunk's partials need one weight w_c = exp(m_c - M) and no running rescale: the
// column sums over chunks then have loads that do not wait on each other (a running rescale put
// an L2 round trip per chunk, 66-128 of them, on one dependency chain). Each thread takes chunks
// t, t + 128, ... and the block reductions have a fixed shape, so the result is deterministic.
__global__ void __launch_bounds__(kMergeThreads)
    fwd_merge(int64_t N, const float* __restrict__ q, const float* __restrict__ k, int64_t D, float invT,
              const float* __restrict__ part_m, const float* __restrict__ part_s, const float* __restrict__ part_o,
              int64_t chunks, float* __restrict__ lse, float* __restrict__ row_loss, float* __restrict__ o) {
    constexpr int kPer = ceil_div(kMaxD, kMergeThreads);
    __shared__ float w[kMaxChunks];
    const int64_t i = blockIdx.x;
    const float pos = warp_dot(q + i * D, k + i * D, D) * invT;  // every warp the same value
    float m = pos;
    for (int64_t c = threadIdx.x; c < chunks; c += kMergeThreads) {
        w[c] = part_m[c * N + i];  // the chunk's max, until the weight replaces it (same thread)
        m = fmaxf(m, w[c]);
    }
    m = block_reduce(m, MaxOp{});
    float s = 0.f;
    for (int64_t c = threadIdx.x; c < chunks; c += kMergeThreads) {
        w[c] = expf(w[c] - m);
        s += part_s[c * N + i] * w[c];
    }
    s = block_reduce(s, SumOp{}) + expf(pos - m);  // block_reduce's barriers also publish w
    float acc[kPer];
#pragma unroll
    for (int e = 0; e < kPer; ++e) acc[e] = 0.f;
#pragma unroll 8
    for (int64_t c = 0; c < chunks; ++c) {
        const float* po = part_o + (c * N + i) * D;
#pragma unroll
        for (int e = 0; e < kPer; ++e) {
            const int64_t d = threadIdx.x + int64_t(e) * kMergeThreads;
            if (d < D) acc[e] = fmaf(po[d], w[c], acc[e]);
        }
    }
    if (threadIdx.x == 0) {
        const float log_s = logf(s);
        lse[i] = m + log_s;
        row_loss[i] = (m - pos) + log_s;
    }
#pragma unroll
    for (int e = 0; e < kPer; ++e) {
        const int64_t d = threadIdx.x + int64_t(e) * kMergeThreads;
        if (d < D) o[i * D + d] = acc[e] / s;
    }
}

// One block: loss = sum(row_loss) / N, summed in a fixed order.
__global__ void mean_rows(const float* row_loss, int64_t N, float* loss) {
    __shared__ float part[kThreads];
    float a = 0.f;
    for (int64_t i = threadIdx.x; i < N; i += blockDim.x) a += row_loss[i];
    part[threadIdx.x] = a;
    __syncthreads();
    for (int o = blockDim.x / 2; o > 0; o >>= 1) {
        if (int(threadIdx.x) < o) part[threadIdx.x] += part[threadIdx.x + o];
        __syncthreads();
    }
    if (threadIdx.x == 0) loss[0] = part[0] / float(N);
}

// dq = scale o + c0 k; dk = c0 q; c0 = (exp(pos - lse) - 1) * scale, scale = g * g_scale with g the
// loss gradient, read here on the device rather than on the host (which would wait for the whole
// forward before the backward could be launched). One warp per query row.
constexpr int kFinishWarps = 4;
__global__ void __launch_bounds__(kFinishWarps * 32)
    bwd_finish(int64_t N, int64_t D, const float* q, const float* k, const float* lse, const float* o, float invT,
               const float* g, float g_scale, float* dq, float* dk) {
    const int64_t i = int64_t(blockIdx.x) * kFinishWarps + (threadIdx.x >> 5);
    if (i >= N) return;  // whole warps: warp_dot's shuffles see all 32 lanes
    const float scale = *g * g_scale;
    const float pos = warp_dot(q + i * D, k + i * D, D) * invT;
    const float c0 = (__expf(pos - lse[i]) - 1.f) * scale;
    for (int64_t d = threadIdx.x & 31; d < D; d += 32) {
        const int64_t e = i * D + d;
        if (dq) dq[e] = scale * o[e] + c0 * k[e];
        if (dk) dk[e] = c0 * q[e];
    }
}

// dqueue rows of one queue tile: sum_i P_ij q_i over every query tile.
__global__ void __launch_bounds__(256, 2)
    bwd_dqueue(const float* q, const float* queue, const float* lse, int64_t N, int64_t K, int64_t D, float invT,
               const float* g, float g_scale, float* dqueue) {
    const float scale = *g * g_scale;
    extern __shared__ float smem[];
    float* Qs = smem;
    float* Us = smem + kTile * row_stride(D);
    __shared__ float Ps[kTile][kTile + 1];
    const int64_t j0 = int64_t(blockIdx.x) * kTile;
    const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
    load_tile(Us, queue, j0, K, D);
    float acc2[4][kCols];  // dqueue rows ty*4+r: P^T goes through shared memory
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int e = 0; e < kCols; ++e) acc2[r][e] = 0.f;
    for (int64_t i0 = 0; i0 < N; i0 += kTile) {
        __syncthreads();
        load_tile(Qs, q, i0, N, D);
        __syncthreads();
        float acc[4][4];
        tile_dot(Qs, Us, D, acc);  // rows: queries ty*4+r, columns: queue rows tx+16c
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            const int64_t row = i0 + ty * 4 + r;
            const float l = row < N ? lse[row] : 0.f;
#pragma unroll
            for (int cc = 0; cc < 4; ++cc)
                Ps[tx + 16 * cc][ty * 4 + r] = row < N ? __expf(acc[r][cc] * invT - l) * scale : 0.f;  // P^T
        }
        __syncthreads();
        add_p_times_tile(Ps, Qs, D, acc2);
    }
#pragma unroll
    for (int r = 0; r < 4; ++r) {
        const int64_t j = j0 + ty * 4 + r;
        if (j >= K) continue;
#pragma unroll
        for (int e = 0; e < kCols; ++e) {
            const int64_t col = tx + 16 * e;
            if (col < D) dqueue[j * D + col] = acc2[r][e];
        }
    }
}

// Chunks of the queue per block: about `blocks` blocks in all, whole tiles each. More blocks fill
// the GPU better; fewer write fewer (max, sum, o) partials (chunks x N x D floats).
int64_t chunk_size(int64_t N, int64_t K, int64_t blocks) {
    const int64_t row_tiles = ceil_div(N, kTile), tiles = ceil_div(K, kTile);
    const int64_t want_chunks = std::max<int64_t>(1, std::min<int64_t>(tiles, blocks / std::max<int64_t>(row_tiles, 1)));
    return ceil_div(tiles, want_chunks) * kTile;
}
// FP32: 256-thread blocks, a few per SM. TF32: 128-thread blocks of far more work per logit tile;
// about two per SM of an H100 (132 SMs) keeps the partials small. Neither count has been tuned:
// with them the H100 ran N = 256, K = 65536 forward + backward in 1.23 ms (FP32) and 0.63 ms
// (TF32), bound by the tiles' synchronous loads (bench/results/h100).
constexpr int64_t kBlocksFp32 = 512, kBlocksTf32 = 264;
static_assert(kBlocksFp32 <= kMaxChunks && kBlocksTf32 <= kMaxChunks, "chunk_size() makes at most `blocks` chunks");

// HPT_INFONCE_BLOCKS=B replaces the block target above, so that a benchmark can sweep it (run E's
// ncu saw the TF32 partial kernel at 44% of SM throughput with its 256 blocks). The chunks, and so
// the order in which the partials are merged, follow it: results are deterministic for each B.
int64_t block_target(bool tf32) {
    static const int64_t given = [] {
        const char* v = std::getenv("HPT_INFONCE_BLOCKS");
        if (!v || !*v) return int64_t(0);
        char* end = nullptr;
        const long long b = std::strtoll(v, &end, 10);
        HPT_CHECK(*end == '\0' && b >= 1 && b <= kMaxChunks, "HPT_INFONCE_BLOCKS=", v,
                  ": expected a whole number of blocks from 1 to ", kMaxChunks);
        return int64_t(b);
    }();
    return given ? given : tf32 ? kBlocksTf32 : kBlocksFp32;
}

void check_inputs(const KernelArgs& a, const Tensor& q) {
    HPT_CHECK(q.dtype() == DType::f32, "info_nce on CUDA takes f32, got ", dtype_name(q.dtype()));
    HPT_CHECK(q.size(1) <= kMaxD, "info_nce on CUDA: feature size ", q.size(1), " above ", kMaxD);
}

// TF32 when asked for and the device has it (mma .tf32: compute capability 8.0); said once otherwise.
bool use_tf32() {
    if (!cuda_tf32()) return false;
    int major = 0;
    HPT_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, current_device()));
    if (major >= 8) return true;
    static bool said = false;
    if (!said) {
        said = true;
        std::fprintf(stderr, "hpt: info_nce: TF32 asked for, but cuda:%d has compute capability %d.x (< 8.0); "
                             "using the FP32 kernels\n", current_device(), major);
    }
    return false;
}

bool g_last_pipelined = false;  // for info_nce_detail::last_partial_tf32_pipelined()

void info_nce_cuda(const KernelArgs& a) {
    const Tensor &q = a.in[0], &k = a.in[1], &queue = a.in[2];
    check_inputs(a, q);
    const int64_t N = q.size(0), D = q.size(1), K = queue.size(0);
    const float invT = float(1.0 / a.attr<InfoNceAttrs>().temperature);
    const bool tf32 = use_tf32();
    const int64_t chunk = chunk_size(N, K, block_target(tf32)), chunks = ceil_div(K, chunk);
    const Device dev = q.device();
    Tensor pm = empty({chunks, N}, DType::f32, dev), ps = empty({chunks, N}, DType::f32, dev);
    Tensor po = empty({chunks, N, D}, DType::f32, dev), rows = empty({N}, DType::f32, dev);
    g_last_pipelined = false;
    if (tf32) {
        g_last_pipelined = info_nce_detail::launch_partial_tf32(q.data<float>(), queue.data<float>(), N, K, D, invT,
                                                                chunk, pm.data<float>(), ps.data<float>(),
                                                                po.data<float>(), current_stream());
    } else {
        const size_t smem = tile_smem(D);
        allow_dynamic_smem(fwd_partial, smem, "info_nce (cuda): query and queue tiles of D = ", D);
        fwd_partial<<<dim3(unsigned(ceil_div(N, kTile)), unsigned(chunks)), 256, smem, current_stream()>>>(
            q.data<float>(), queue.data<float>(), N, K, D, invT, chunk, pm.data<float>(), ps.data<float>(),
            po.data<float>());
        HPT_CUDA_LAUNCH_CHECK("info_nce partial");
    }
    fwd_merge<<<unsigned(N), kMergeThreads, 0, current_stream()>>>(
        N, q.data<float>(), k.data<float>(), D, invT, pm.data<float>(), ps.data<float>(), po.data<float>(), chunks,
        a.out[1].data<float>(), rows.data<float>(), a.out[2].data<float>());
    HPT_CUDA_LAUNCH_CHECK("info_nce merge");
    mean_rows<<<1, kThreads, 0, current_stream()>>>(rows.data<float>(), N, a.out[0].data<float>());
    HPT_CUDA_LAUNCH_CHECK("info_nce mean");
}
HPT_REGISTER_CUDA_KERNEL(info_nce, info_nce_cuda);

void info_nce_backward_cuda(const KernelArgs& a) {
    const Tensor &g = a.in[0], &q = a.in[1], &k = a.in[2], &queue = a.in[3], &lse = a.in[4], &o = a.in[5];
    const Tensor &gq = a.out[0], &gk = a.out[1], &gu = a.out[2];
    check_inputs(a, q);
    const int64_t N = q.size(0), D = q.size(1), K = queue.size(0);
    const double invT = 1.0 / a.attr<InfoNceAttrs>().temperature;
    HPT_CHECK(g.dtype() == DType::f32 && g.numel() == 1, "info_nce_backward on CUDA: the loss gradient must be one f32 "
              "number, got ", dtype_name(g.dtype()), " with ", g.numel(), " elements");
    // The kernels read it on the device; the op's device check lets a 0-dim CPU tensor through.
    HPT_CHECK(g.device() == q.device(), "info_nce_backward on CUDA: the loss gradient is on ", g.device().str(),
              ", the features on ", q.device().str());
    const float g_scale = float(invT / double(N));
    if (gq.defined() || gk.defined()) {
        if (N > 0) {
            bwd_finish<<<unsigned(ceil_div(N, kFinishWarps)), kFinishWarps * 32, 0, current_stream()>>>(
                N, D, q.data<float>(), k.data<float>(), lse.data<float>(), o.data<float>(), float(invT),
                g.data<float>(), g_scale, gq.defined() ? gq.data<float>() : nullptr,
                gk.defined() ? gk.data<float>() : nullptr);
            HPT_CUDA_LAUNCH_CHECK("info_nce_backward finish");
        }
    }
    if (gu.defined()) {
        const size_t smem = tile_smem(D);
        allow_dynamic_smem(bwd_dqueue, smem, "info_nce_backward (cuda): query and queue tiles of D = ", D);
        bwd_dqueue<<<unsigned(ceil_div(K, kTile)), 256, smem, current_stream()>>>(
            q.data<float>(), queue.data<float>(), lse.data<float>(), N, K, D, float(invT), g.data<float>(), g_scale,
            gu.data<float>());
        HPT_CUDA_LAUNCH_CHECK("info_nce_backward dqueue");
    }
}
HPT_REGISTER_CUDA_KERNEL(info_nce_backward, info_nce_backward_cuda);

}  // namespace

bool info_nce_detail::last_partial_tf32_pipelined() { return g_last_pipelined; }

}  // namespace hpt::cuda
