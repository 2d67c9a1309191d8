// The InfoNCE forward partials on TF32 tensor cores (info_nce.h says what they are), in the
// flash-attention form with V = the queue: per block 64 query rows and one queue chunk; each of
// the 4 warps owns 16 query rows and, per tile of 64 queue rows, computes its 16 x 64 logits with
// mma.sync, folds them into a running (max, sum) per row, rescales its running o and adds P U.
// Logits, weights and o never leave registers; only the q and queue tiles go through shared
// memory, rounded to TF32 there (for D <= 128 the warp's q fragments then move to registers for
// the whole chunk: QueryFrags). Two kernels share that per-tile work (fold_tile): partial_tf32
// loads each queue tile synchronously; the pipelined one streams the next tile in with cp.async
// while folding the current one. Both passed their [cuda] test on the H100 (runs D and F, which
// asks the pipelined one for the same bits as partial_tf32), before the q fragments moved to
// registers (not yet run on a GPU).
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
#include "kernels/cuda/info_nce_tile.cuh"
#include "kernels/cuda/runtime.h"
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
    load_tile_rows(s, g, r0, rows, D, Dp, Dp + kPad, [](float x) { return to_tf32(x); });
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

// What one thread carries across queue tiles: rows wr + g (h = 0) and wr + g + 8 (h = 1) of the
// running max, sum and o. kDCap: a compile-time bound on Dp (64, 128 or 256) that sizes o.
template <int kDCap>
struct RowState {
    static constexpr int kDT = kDCap / 8;  // 8-column tiles of o
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
    float o[kDT][4] = {};
};

// The calling warp's A fragments of its 16 query rows (Qs rows wr .. wr + 15), one per 8-column
// step. For D up to 128 they are loaded once per block into registers instead of once per queue
// tile from shared memory (a ninth of a tile's shared-memory reads; 222-227 registers, no spills).
// That allows two blocks per SM: the pipelined kernel's shared memory allowed no more, but the
// synchronous one's (two tiles) allowed three at 168 registers, which shows only with more blocks
// than the default target. For D up to 256 the fragments would spill, and stay in shared memory.
template <int kDCap>
struct QueryFrags {
    static constexpr bool kInRegs = kDCap <= 128;
    const uint32_t* Qs;
    int ld, wr;
    uint32_t a[kInRegs ? kDCap / 8 : 1][4];

    __device__ __forceinline__ void load(int Dp, int g, int t) {
        if constexpr (kInRegs) {
#pragma unroll
            for (int ks = 0; ks < kDCap / 8; ++ks) {
                if (ks * 8 >= Dp) break;
                from_smem(ks, g, t, a[ks]);
            }
        }
    }
    // The fragment of 8-column step ks (ks a compile-time constant after unrolling).
    __device__ __forceinline__ void get(int ks, int g, int t, uint32_t (&f)[4]) const {
        if constexpr (kInRegs) {
            f[0] = a[ks][0], f[1] = a[ks][1], f[2] = a[ks][2], f[3] = a[ks][3];
        } else {
            from_smem(ks, g, t, f);
        }
    }
    __device__ __forceinline__ void from_smem(int ks, int g, int t, uint32_t (&f)[4]) const {
        const uint32_t* qa = Qs + (wr + g) * ld + ks * 8 + t;
        f[0] = qa[0], f[1] = qa[8 * ld], f[2] = qa[4], f[3] = qa[8 * ld + 4];
    }
};

// Folds one 64-row queue tile (rows [j0, j_end) valid, already in Us as TF32) into the state of
// the calling warp's 16 query rows.
template <int kDCap>
__device__ __forceinline__ void fold_tile(const QueryFrags<kDCap>& q, const uint32_t* Us, int ld, int Dp, int g, int t,
                                          int64_t j0, int64_t j_end, float invT, RowState<kDCap>& st) {
    constexpr int kDT = RowState<kDCap>::kDT;
    // s[nt] = logits of rows (wr + g, wr + g + 8) x queue rows j0 + nt*8 + (2t, 2t + 1).
    float s[8][4];
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
    for (int ks = 0; ks < kDCap / 8; ++ks) {
        if (ks * 8 >= Dp) break;
        uint32_t f[4];
        q.get(ks, g, t, f);
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) {
            // B[k][n] = U[nt*8 + n][ks*8 + k]
            const uint32_t* ub = Us + (nt * 8 + g) * ld + ks * 8 + t;
            mma_tf32(s[nt], f[0], f[1], f[2], f[3], ub[0], ub[4]);
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
        const float mn = fmaxf(st.m[h], quad_max(mt[h]));  // finite: queue row j0 is always valid
        alpha[h] = st.m[h] == -INFINITY ? 0.f : __expf(st.m[h] - mn);
        st.m[h] = mn;
    }
#pragma unroll
    for (int nt = 0; nt < 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const float p = s[nt][e] == -INFINITY ? 0.f : __expf(s[nt][e] - st.m[e >> 1]);
            s[nt][e] = p;
            ts[e >> 1] += p;
        }
#pragma unroll
    for (int h = 0; h < 2; ++h) st.l[h] = st.l[h] * alpha[h] + quad_sum(ts[h]);
#pragma unroll
    for (int dt = 0; dt < kDT; ++dt) {
        st.o[dt][0] *= alpha[0], st.o[dt][1] *= alpha[0];
        st.o[dt][2] *= alpha[1], st.o[dt][3] *= alpha[1];
    }

    // o += P U, k over the tile's 64 queue rows in 8 steps (permuted k order: see the top).
#pragma unroll
    for (int kk = 0; kk < 8; ++kk) {
        const uint32_t a0 = to_tf32(s[kk][0]), a1 = to_tf32(s[kk][2]), a2 = to_tf32(s[kk][1]), a3 = to_tf32(s[kk][3]);
        const uint32_t* ub = Us + (kk * 8 + 2 * t) * ld + g;  // B[t][n] = U[kk*8 + 2t][dt*8 + n]
#pragma unroll
        for (int dt = 0; dt < kDT; ++dt)
            if (dt * 8 < Dp) mma_tf32(st.o[dt], a0, a1, a2, a3, ub[dt * 8], ub[ld + dt * 8]);
    }
}

// The thread's rows of the block's partials for chunk c.
template <int kDCap>
__device__ __forceinline__ void store_partials(const RowState<kDCap>& st, int64_t row0, int wr, int g, int t, int64_t c,
                                               int64_t N, int D, float* part_m, float* part_s, float* part_o) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int64_t row = row0 + wr + g + 8 * h;
        if (row >= N) continue;
        if (t == 0) part_m[c * N + row] = st.m[h], part_s[c * N + row] = st.l[h];
        float* po = part_o + (c * N + row) * D;
#pragma unroll
        for (int dt = 0; dt < RowState<kDCap>::kDT; ++dt) {
            const int col = dt * 8 + 2 * t;
            if (col < D) po[col] = st.o[dt][2 * h];
            if (col + 1 < D) po[col + 1] = st.o[dt][2 * h + 1];
        }
    }
}

// The grid is (row tiles) x (chunks), kBlockThreads threads; shared memory holds the block's query
// tile and one queue tile, loaded synchronously.
template <int kDCap>
__global__ void __launch_bounds__(kBlockThreads)
    partial_tf32(const float* q, const float* queue, int64_t N, int64_t K, int D, int Dp, float invT, int64_t chunk,
                 float* part_m, float* part_s, float* part_o) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    __trap();  // mma .tf32 needs sm_80; the host never launches this there
#else
    extern __shared__ __align__(16) uint32_t tc_smem[];  // cp.async 16 and uint4 reads
    const int ld = Dp + kPad;
    uint32_t* Qs = tc_smem;
    uint32_t* Us = tc_smem + kTile * ld;
    const int64_t row0 = int64_t(blockIdx.x) * kTile, c = blockIdx.y;
    const int64_t j_begin = c * chunk, j_end = min(K, j_begin + chunk);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane >> 2, t = lane & 3, wr = warp * 16;

    load_tile_tf32(Qs, q, row0, N, D, Dp);
    __syncthreads();
    QueryFrags<kDCap> qf{Qs, ld, wr, {}};
    qf.load(Dp, g, t);
    RowState<kDCap> st;
    for (int64_t j0 = j_begin; j0 < j_end; j0 += kTile) {
        __syncthreads();  // the previous tile's P U is done with Us
        load_tile_tf32(Us, queue, j0, j_end, D, Dp);
        __syncthreads();
        fold_tile<kDCap>(qf, Us, ld, Dp, g, t, j0, j_end, invT, st);
    }
    store_partials<kDCap>(st, row0, wr, g, t, c, N, D, part_m, part_s, part_o);
#endif
}

// ---- the pipelined variant: the next queue tile streams in (cp.async, 16 bytes a copy) while
// the current one is folded. The synchronous loads above wait for the whole tile before any
// tensor-core work; at N = 256, K = 65536 the H100 ran the forward and backward in 0.63 ms, about
// 3% of its TF32 rate, when they also issued one 4-byte load at a time with a division each (now
// four in flight, no division: not yet timed).

__device__ __forceinline__ void cp_async16(uint32_t* dst, const float* src, bool valid) {
    const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
    // src-size 0 copies nothing and fills the 16 bytes with zeros (rows past the chunk, columns past D).
    // "memory": the compiler must not move shared-memory accesses across the copies or the waits.
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(valid ? 16 : 0)
                 : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait_all_but_one() { asm volatile("cp.async.wait_group 1;\n" ::: "memory"); }

// The 16-byte pieces of a tile that this thread copies: piece e is row e / (Dp / 4), columns
// 4 (e % (Dp / 4)) .. + 3. The issue and the rounding walk the same pieces, so each thread rounds
// only what its own cp.async wrote (visible to it after the wait; to the block after a barrier).
template <class F>
__device__ __forceinline__ void for_my_pieces(int Dp, F f) {
    const int per_row = Dp / 4;
    for (int e = threadIdx.x; e < kTile * per_row; e += blockDim.x) {
        const int r = e / per_row;
        f(r, (e - r * per_row) * 4);
    }
}

// Starts copying rows [r0, r0 + 64) of a [rows, D] matrix (those below `rows`) into s, as raw f32 bits.
__device__ __forceinline__ void issue_tile(uint32_t* s, const float* g, int64_t r0, int64_t rows, int D, int Dp) {
    const int ld = Dp + kPad;
    for_my_pieces(Dp, [&](int r, int col) {
        const bool valid = r0 + r < rows && col < D;  // D % 4 == 0: a piece is all in or all out
        cp_async16(s + r * ld + col, valid ? g + (r0 + r) * D + col : g, valid);
    });
}

__device__ __forceinline__ void round_my_pieces(uint32_t* s, int Dp) {
    const int ld = Dp + kPad;
    for_my_pieces(Dp, [&](int r, int col) {
        uint4* p = reinterpret_cast<uint4*>(s + r * ld + col);
        // The same cvt.rna as the synchronous kernel's loads, so the two give the same bits by construction.
        uint4 v = *p;
        v.x = to_tf32(__uint_as_float(v.x)), v.y = to_tf32(__uint_as_float(v.y));
        v.z = to_tf32(__uint_as_float(v.z)), v.w = to_tf32(__uint_as_float(v.w));
        *p = v;
    });
}

// Same partials, bit for bit, as partial_tf32 (same rounding, same order of every sum). Needs
// D % 4 == 0 and 16-byte-aligned q and queue (the host checks); shared memory: the query tile and
// two queue tiles.
template <int kDCap>
__global__ void __launch_bounds__(kBlockThreads)
    partial_tf32_pipelined(const float* q, const float* queue, int64_t N, int64_t K, int D, int Dp, float invT,
                           int64_t chunk, float* part_m, float* part_s, float* part_o) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    __trap();
#else
    extern __shared__ __align__(16) uint32_t tc_smem[];  // cp.async 16 and uint4 reads
    const int ld = Dp + kPad;
    uint32_t* Qs = tc_smem;
    // Queue tile buffer b (0 or 1) at ub(b): arithmetic, not an array, which would live on the stack.
    const auto ub = [&](int64_t b) { return tc_smem + (1 + b) * kTile * ld; };
    const int64_t row0 = int64_t(blockIdx.x) * kTile, c = blockIdx.y;
    const int64_t j_begin = c * chunk, j_end = min(K, j_begin + chunk);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int g = lane >> 2, t = lane & 3, wr = warp * 16;
    const int64_t tiles = (j_end - j_begin + kTile - 1) / kTile;

    // The query tile travels with the first queue tile (one group) and is rounded with it.
    issue_tile(Qs, q, row0, N, D, Dp);
    issue_tile(ub(0), queue, j_begin, j_end, D, Dp);
    cp_async_commit();
    RowState<kDCap> st;
    QueryFrags<kDCap> qf{Qs, ld, wr, {}};
    for (int64_t it = 0; it < tiles; ++it) {
        const int64_t j0 = j_begin + it * kTile;
        // Buffer (it + 1) & 1 was last read by tile it - 1, which every warp finished before the
        // barrier that ended the previous iteration.
        if (it + 1 < tiles) issue_tile(ub((it + 1) & 1), queue, j0 + kTile, j_end, D, Dp);
        cp_async_commit();  // possibly empty: keeps "all but the newest group" meaning tile it
        cp_async_wait_all_but_one();
        if (it == 0) round_my_pieces(Qs, Dp);
        round_my_pieces(ub(it & 1), Dp);
        __syncthreads();  // tile it (and, at it = 0, the query tile) complete and rounded
        if (it == 0) qf.load(Dp, g, t);
        fold_tile<kDCap>(qf, ub(it & 1), ld, Dp, g, t, j0, j_end, invT, st);
        __syncthreads();  // everyone is done with buffer it & 1 before tile it + 2 is issued into it
    }
    store_partials<kDCap>(st, row0, wr, g, t, c, N, D, part_m, part_s, part_o);
#endif
}

// The pipelined kernel where it applies (cuda_info_nce_pipelined(), D % 4 == 0, aligned inputs,
// its shared memory available), else the synchronous one.
bool can_pipeline(const float* q, const float* queue, int D, size_t smem) {
    if (!cuda_info_nce_pipelined() || D % 4 != 0) return false;
    if ((reinterpret_cast<uintptr_t>(q) | reinterpret_cast<uintptr_t>(queue)) % 16 != 0) return false;
    int optin = 0;
    HPT_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, current_device()));
    return smem <= size_t(optin);
}

template <int kDCap>
bool launch(const float* q, const float* queue, int64_t N, int64_t K, int D, int Dp, float invT, int64_t chunk,
            float* part_m, float* part_s, float* part_o, cudaStream_t stream) {
    const size_t tile_bytes = size_t(kTile * (Dp + kPad)) * sizeof(uint32_t);
    const dim3 grid(unsigned(ceil_div(N, kTile)), unsigned(ceil_div(K, chunk)));
    if (can_pipeline(q, queue, D, 3 * tile_bytes)) {
        allow_dynamic_smem(partial_tf32_pipelined<kDCap>, 3 * tile_bytes, "info_nce (cuda, tf32): tiles of D = ", D);
        partial_tf32_pipelined<kDCap><<<grid, kBlockThreads, 3 * tile_bytes, stream>>>(
            q, queue, N, K, D, Dp, invT, chunk, part_m, part_s, part_o);
        HPT_CUDA_LAUNCH_CHECK("info_nce partial (tf32, pipelined)");
        return true;
    }
    allow_dynamic_smem(partial_tf32<kDCap>, 2 * tile_bytes, "info_nce (cuda, tf32): tiles of D = ", D);
    partial_tf32<kDCap><<<grid, kBlockThreads, 2 * tile_bytes, stream>>>(q, queue, N, K, D, Dp, invT, chunk, part_m,
                                                                          part_s, part_o);
    HPT_CUDA_LAUNCH_CHECK("info_nce partial (tf32)");
    return false;
}

}  // namespace

bool launch_partial_tf32(const float* q, const float* queue, int64_t N, int64_t K, int64_t D, float invT,
                         int64_t chunk, float* part_m, float* part_s, float* part_o, cudaStream_t stream) {
    const int Dp = int(ceil_div(D, 8) * 8);
    if (Dp <= 64) return launch<64>(q, queue, N, K, int(D), Dp, invT, chunk, part_m, part_s, part_o, stream);
    if (Dp <= 128) return launch<128>(q, queue, N, K, int(D), Dp, invT, chunk, part_m, part_s, part_o, stream);
    return launch<kMaxD>(q, queue, N, K, int(D), Dp, invT, chunk, part_m, part_s, part_o, stream);
}

}  // namespace hpt::cuda::info_nce_detail
