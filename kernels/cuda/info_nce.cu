// The fused InfoNCE of MoCo on CUDA (DESIGN.md §4): the N x (K+1) logits are never stored.
//
// Forward, two kernels:
//   partial:  grid (row tiles of 64 queries) x (chunks of the queue). A block keeps its 64 query
//             rows in shared memory, walks its chunk in tiles of 64 queue rows, computes the
//             64x64 logits of each tile in registers and folds them into a running (max, sum)
//             per query (online log-sum-exp); it writes one (max, sum) per query and chunk.
//   finish:   per query, the positive logit q.k/T and the chunks' (max, sum) give lse and the
//             row's loss; one block then sums the rows in a fixed order.
// Backward recomputes each tile's logits, P = exp(S - lse) * g/(N T), and accumulates
// dq += P queue_tile in registers per (row tile, chunk) — partial sums that a last kernel adds in
// chunk order together with the positive term (p0 - 1) k. dqueue (not needed by MoCo) is
// computed per queue tile over all queries; dk from p0 alone.
// Every sum runs in a fixed order (warp shuffles with fixed offsets, chunks in index order), so
// the results are deterministic. The math is FP32 FMA; tensor-core (TF32/BF16) variants are
// left for tuning on the GPU.
#include "engine/ops/attrs.h"
#include "engine/ops/registry.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernel_entry.h"

namespace hpt::cuda {
namespace {

constexpr int kTile = 64;       // query rows and queue rows per tile
constexpr int kPad = 4;         // shared-memory row padding (bank conflicts)
constexpr int kMaxD = 256;      // shared memory holds two 64 x D tiles

size_t tile_smem(int64_t D) { return size_t(2 * kTile * (D + kPad)) * sizeof(float); }

// Loads rows [r0, r0 + 64) of a [rows, D] matrix into smem (row-major, padded); rows past the
// end read as zeros.
__device__ void load_tile(float* s, const float* g, int64_t r0, int64_t rows, int64_t D) {
    const int64_t ld = D + kPad;
    for (int64_t e = threadIdx.x; e < kTile * D; e += blockDim.x) {
        const int64_t r = e / D, c = e % D;
        s[r * ld + c] = r0 + r < rows ? g[(r0 + r) * D + c] : 0.f;
    }
}

// acc[r][c] = sum_d A[ty*4+r][d] * B[tx*4+c][d] for the thread (ty, tx) of a 16x16 layout.
__device__ void tile_dot(const float* A, const float* B, int64_t D, float (&acc)[4][4]) {
    const int64_t ld = D + kPad;
    const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int c = 0; c < 4; ++c) acc[r][c] = 0.f;
    for (int64_t d = 0; d < D; ++d) {
        float a[4], b[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) a[i] = A[(ty * 4 + i) * ld + d], b[i] = B[(tx * 4 + i) * ld + d];
#pragma unroll
        for (int r = 0; r < 4; ++r)
#pragma unroll
            for (int c = 0; c < 4; ++c) acc[r][c] = fmaf(a[r], b[c], acc[r][c]);
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

__global__ void fwd_partial(const float* q, const float* queue, int64_t N, int64_t K, int64_t D, float invT,
                            int64_t chunk, float* part_m, float* part_s) {
    extern __shared__ float smem[];
    float* Qs = smem;
    float* Us = smem + kTile * (D + kPad);
    const int64_t row0 = int64_t(blockIdx.x) * kTile, c = blockIdx.y;
    const int64_t j_begin = c * chunk, j_end = min(K, j_begin + chunk);
    const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
    load_tile(Qs, q, row0, N, D);
    float m[4], s[4];
#pragma unroll
    for (int r = 0; r < 4; ++r) m[r] = -INFINITY, s[r] = 0.f;
    for (int64_t j0 = j_begin; j0 < j_end; j0 += kTile) {
        __syncthreads();
        load_tile(Us, queue, j0, j_end, D);
        __syncthreads();
        float acc[4][4];
        tile_dot(Qs, Us, D, acc);
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            float tmax = -INFINITY;
#pragma unroll
            for (int cc = 0; cc < 4; ++cc) {
                acc[r][cc] = j0 + tx * 4 + cc < j_end ? acc[r][cc] * invT : -INFINITY;
                tmax = fmaxf(tmax, acc[r][cc]);
            }
            tmax = row_max(tmax);
            const float mn = fmaxf(m[r], tmax);
            float ts = 0.f;
#pragma unroll
            for (int cc = 0; cc < 4; ++cc) ts += acc[r][cc] == -INFINITY ? 0.f : __expf(acc[r][cc] - mn);
            ts = row_sum(ts);
            s[r] = (m[r] == -INFINITY ? 0.f : s[r] * __expf(m[r] - mn)) + ts;
            m[r] = mn;
        }
    }
    if (tx == 0) {
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            const int64_t row = row0 + ty * 4 + r;
            if (row < N) part_m[c * N + row] = m[r], part_s[c * N + row] = s[r];
        }
    }
}

__device__ float dot_row(const float* a, const float* b, int64_t D) {
    float d = 0.f;
    for (int64_t i = 0; i < D; ++i) d = fmaf(a[i], b[i], d);
    return d;
}

__global__ void fwd_finish(int64_t N, const float* q, const float* k, int64_t D, float invT, const float* part_m,
                           const float* part_s, int64_t chunks, float* lse, float* row_loss) {
    HPT_GRID_STRIDE(i, N) {
        const float pos = dot_row(q + i * D, k + i * D, D) * invT;
        float m = pos, s = 1.f;
        for (int64_t c = 0; c < chunks; ++c) {
            const float cm = part_m[c * N + i], cs = part_s[c * N + i];
            if (cm == -INFINITY) continue;
            const float mn = fmaxf(m, cm);
            s = s * __expf(m - mn) + cs * __expf(cm - mn);
            m = mn;
        }
        const float l = m + logf(s);
        lse[i] = l;
        row_loss[i] = (m - pos) + logf(s);
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

// dq partials: for the block's row tile and queue chunk, sum_j P_ij queue_j with
// P_ij = exp(S_ij - lse_i) * scale. Thread (ty, tx) owns rows ty*4..+3 and columns tx*8..+7 of
// dq (D = 128: 16 x 8; other D: columns tx + 16 e).
__global__ void bwd_dq_partial(const float* q, const float* queue, const float* lse, int64_t N, int64_t K, int64_t D,
                               float invT, float scale, int64_t chunk, float* dq_part) {
    extern __shared__ float smem[];
    float* Qs = smem;
    float* Us = smem + kTile * (D + kPad);
    __shared__ float Ps[kTile][kTile + 1];
    const int64_t ld = D + kPad;
    const int64_t row0 = int64_t(blockIdx.x) * kTile, c = blockIdx.y;
    const int64_t j_begin = c * chunk, j_end = min(K, j_begin + chunk);
    const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
    load_tile(Qs, q, row0, N, D);
    float l[4];
#pragma unroll
    for (int r = 0; r < 4; ++r) l[r] = row0 + ty * 4 + r < N ? lse[row0 + ty * 4 + r] : 0.f;
    constexpr int kCols = kMaxD / 16;
    float acc2[4][kCols];
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int e = 0; e < kCols; ++e) acc2[r][e] = 0.f;
    for (int64_t j0 = j_begin; j0 < j_end; j0 += kTile) {
        __syncthreads();
        load_tile(Us, queue, j0, j_end, D);
        __syncthreads();
        float acc[4][4];
        tile_dot(Qs, Us, D, acc);
#pragma unroll
        for (int r = 0; r < 4; ++r)
#pragma unroll
            for (int cc = 0; cc < 4; ++cc)
                Ps[ty * 4 + r][tx * 4 + cc] =
                    j0 + tx * 4 + cc < j_end ? __expf(acc[r][cc] * invT - l[r]) * scale : 0.f;
        __syncthreads();
        for (int64_t j = 0; j < kTile; ++j) {
#pragma unroll
            for (int e = 0; e < kCols; ++e) {
                const int64_t col = tx + 16 * e;
                if (col >= D) break;
                const float u = Us[j * ld + col];
#pragma unroll
                for (int r = 0; r < 4; ++r) acc2[r][e] = fmaf(Ps[ty * 4 + r][j], u, acc2[r][e]);
            }
        }
    }
#pragma unroll
    for (int r = 0; r < 4; ++r) {
        const int64_t row = row0 + ty * 4 + r;
        if (row >= N) continue;
#pragma unroll
        for (int e = 0; e < kCols; ++e) {
            const int64_t col = tx + 16 * e;
            if (col < D) dq_part[(c * N + row) * D + col] = acc2[r][e];
        }
    }
}

// dq = sum over chunks (in order) + c0 k; dk = c0 q; c0 = (exp(pos - lse) - 1) * scale.
__global__ void bwd_finish(int64_t ND, int64_t D, int64_t N, const float* q, const float* k, const float* lse,
                           const float* dq_part, int64_t chunks, float invT, float scale, float* dq, float* dk) {
    HPT_GRID_STRIDE(e, ND) {
        const int64_t i = e / D;
        const float pos = dot_row(q + i * D, k + i * D, D) * invT;
        const float c0 = (__expf(pos - lse[i]) - 1.f) * scale;
        if (dq) {
            float a = 0.f;
            for (int64_t c = 0; c < chunks; ++c) a += dq_part[c * N * D + e];
            dq[e] = a + c0 * k[e];
        }
        if (dk) dk[e] = c0 * q[e];
    }
}

// dqueue rows of one queue tile: sum_i P_ij q_i over every query tile.
__global__ void bwd_dqueue(const float* q, const float* queue, const float* lse, int64_t N, int64_t K, int64_t D,
                           float invT, float scale, float* dqueue) {
    extern __shared__ float smem[];
    float* Qs = smem;
    float* Us = smem + kTile * (D + kPad);
    __shared__ float Ps[kTile][kTile + 1];
    const int64_t ld = D + kPad;
    const int64_t j0 = int64_t(blockIdx.x) * kTile;
    const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
    load_tile(Us, queue, j0, K, D);
    constexpr int kCols = kMaxD / 16;
    float acc2[4][kCols];  // queue rows tx*4.. would need a transposed layout; use rows ty*4+r
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int e = 0; e < kCols; ++e) acc2[r][e] = 0.f;
    for (int64_t i0 = 0; i0 < N; i0 += kTile) {
        __syncthreads();
        load_tile(Qs, q, i0, N, D);
        __syncthreads();
        float acc[4][4];
        tile_dot(Qs, Us, D, acc);  // rows: queries ty*4+r, columns: queue rows tx*4+c
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            const int64_t row = i0 + ty * 4 + r;
            const float l = row < N ? lse[row] : 0.f;
#pragma unroll
            for (int cc = 0; cc < 4; ++cc)
                Ps[tx * 4 + cc][ty * 4 + r] = row < N ? __expf(acc[r][cc] * invT - l) * scale : 0.f;  // P^T
        }
        __syncthreads();
        for (int64_t i = 0; i < kTile; ++i) {
#pragma unroll
            for (int e = 0; e < kCols; ++e) {
                const int64_t col = tx + 16 * e;
                if (col >= D) break;
                const float qv = Qs[i * ld + col];
#pragma unroll
                for (int r = 0; r < 4; ++r) acc2[r][e] = fmaf(Ps[ty * 4 + r][i], qv, acc2[r][e]);
            }
        }
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

// Chunks of the queue per block: enough blocks to fill the GPU (a few per SM), whole tiles each.
int64_t chunk_size(int64_t N, int64_t K) {
    const int64_t row_tiles = ceil_div(N, kTile), tiles = ceil_div(K, kTile);
    const int64_t want_chunks = std::max<int64_t>(1, std::min<int64_t>(tiles, 512 / std::max<int64_t>(row_tiles, 1)));
    return ceil_div(tiles, want_chunks) * kTile;
}

template <class Kernel>
void allow_smem(Kernel k, size_t bytes) {
    HPT_CUDA_CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

void check_inputs(const KernelArgs& a, const Tensor& q) {
    HPT_CHECK(q.dtype() == DType::f32, "info_nce on CUDA takes f32, got ", dtype_name(q.dtype()));
    HPT_CHECK(q.size(1) <= kMaxD, "info_nce on CUDA: feature size ", q.size(1), " above ", kMaxD);
}

void info_nce_cuda(const KernelArgs& a) {
    const Tensor &q = a.in[0], &k = a.in[1], &queue = a.in[2];
    check_inputs(a, q);
    const int64_t N = q.size(0), D = q.size(1), K = queue.size(0);
    const float invT = float(1.0 / a.attr<InfoNceAttrs>().temperature);
    const int64_t chunk = chunk_size(N, K), chunks = ceil_div(K, chunk);
    const Device dev = q.device();
    Tensor pm = empty({chunks, N}, DType::f32, dev), ps = empty({chunks, N}, DType::f32, dev);
    Tensor rows = empty({N}, DType::f32, dev);
    const size_t smem = tile_smem(D);
    allow_smem(fwd_partial, smem);
    fwd_partial<<<dim3(unsigned(ceil_div(N, kTile)), unsigned(chunks)), 256, smem, current_stream()>>>(
        q.data<float>(), queue.data<float>(), N, K, D, invT, chunk, pm.data<float>(), ps.data<float>());
    HPT_CUDA_LAUNCH_CHECK("info_nce partial");
    launch_linear("info_nce finish", fwd_finish, N, q.data<float>(), k.data<float>(), D, invT, pm.data<float>(),
                  ps.data<float>(), chunks, a.out[1].data<float>(), rows.data<float>());
    mean_rows<<<1, kThreads, 0, current_stream()>>>(rows.data<float>(), N, a.out[0].data<float>());
    HPT_CUDA_LAUNCH_CHECK("info_nce mean");
}
HPT_REGISTER_CUDA_KERNEL(info_nce, info_nce_cuda);

void info_nce_backward_cuda(const KernelArgs& a) {
    const Tensor &g = a.in[0], &q = a.in[1], &k = a.in[2], &queue = a.in[3], &lse = a.in[4];
    const Tensor &gq = a.out[0], &gk = a.out[1], &gu = a.out[2];
    check_inputs(a, q);
    const int64_t N = q.size(0), D = q.size(1), K = queue.size(0);
    const double invT = 1.0 / a.attr<InfoNceAttrs>().temperature;
    // The loss gradient is one number; reading it costs a sync, which the backward of a scalar loss
    // can afford (it is the first op of the backward pass).
    const float scale = float(g.item<double>() / double(N) * invT);
    const Device dev = q.device();
    const size_t smem = tile_smem(D);
    Tensor dq_part;
    int64_t chunks = 0;
    if (gq.defined()) {
        const int64_t chunk = chunk_size(N, K);
        chunks = ceil_div(K, chunk);
        dq_part = empty({chunks, N, D}, DType::f32, dev);
        allow_smem(bwd_dq_partial, smem);
        bwd_dq_partial<<<dim3(unsigned(ceil_div(N, kTile)), unsigned(chunks)), 256, smem, current_stream()>>>(
            q.data<float>(), queue.data<float>(), lse.data<float>(), N, K, D, float(invT), scale, chunk,
            dq_part.data<float>());
        HPT_CUDA_LAUNCH_CHECK("info_nce_backward dq");
    }
    if (gq.defined() || gk.defined()) {
        launch_linear("info_nce_backward finish", bwd_finish, N * D, D, N, q.data<float>(), k.data<float>(),
                      lse.data<float>(), gq.defined() ? dq_part.data<float>() : nullptr, chunks, float(invT), scale,
                      gq.defined() ? gq.data<float>() : nullptr, gk.defined() ? gk.data<float>() : nullptr);
    }
    if (gu.defined()) {
        allow_smem(bwd_dqueue, smem);
        bwd_dqueue<<<unsigned(ceil_div(K, kTile)), 256, smem, current_stream()>>>(
            q.data<float>(), queue.data<float>(), lse.data<float>(), N, K, D, float(invT), scale, gu.data<float>());
        HPT_CUDA_LAUNCH_CHECK("info_nce_backward dqueue");
    }
}
HPT_REGISTER_CUDA_KERNEL(info_nce_backward, info_nce_backward_cuda);

}  // namespace
}  // namespace hpt::cuda
