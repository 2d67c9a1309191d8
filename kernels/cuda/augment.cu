// GPU augmentation: both views of a u8 NHWC batch. Mirrors the CPU specification in
// ssl/augment.cpp: the same parameter draws (draw_view_params) and the same per-pixel formulas
// (ssl/augment_pixel.h), in the same order; only the final normalisation multiplies by 1/std where
// the CPU divides.
//
// Work is cut into tiles of a view's rows (about kTilePixels pixels each) so that a batch makes
// thousands of equal blocks: one block per whole view (the first version) gave 512 blocks for
// 256 images at 224x224, fewer than the H100 holds at once, with views of very unequal cost
// (contrast doubles the work, hue and blur add to it). Four launches, in stream order:
//   draw_kernel      one thread per (image, view) draws the view's parameters into params_out.
//   gray_sum_kernel  contrast blends with the mean of the gray image at contrast's place in the
//                    jitter order: per tile of a view with contrast, the sum of that gray image
//                    (recomputed from the u8 source) into tile_sums, in double.
//   augment_kernel   per tile: every pixel's whole chain from the u8 source (the mean is the tile
//                    sums added in tile order, so it does not depend on timing); views without blur
//                    are normalised and flipped straight into the output, blurred views write their
//                    pre-blur values to `scratch`.
//   blur_kernel      one block per (image, row tile, view); blocks of unblurred views exit. Per
//                    channel it loads the tile's rows plus a halo of `radius` rows, blurs them
//                    horizontally into shared memory (reflect padding), then vertically, normalises
//                    and flips into the output. Same summation order as the CPU (horizontal first,
//                    taps left to right).
// The bilinear taps of a tile's rows and of every column are computed once per block into shared
// memory, and a pixel's row and column come from its index by a multiply-high (FastDiv).
#include <cstdint>
#include <cuda_runtime.h>

#include <algorithm>

#include "engine/core/error.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/common.cuh"
#include "ssl/augment.h"
#include "ssl/augment_pixel.h"

namespace hpt::ssl {
namespace {

using cuda::FastDiv;

constexpr int kThreads = 256;
constexpr int kTileRows = 16;       // the blur pass's row tiles
constexpr int32_t kTilePixels = 1024;  // about 4 pixels per thread per tile in the other passes

struct Geometry {
    int32_t n, in_h, in_w, in_c, nc, oh, ow;
    int32_t tile_rows, tiles;  // the row tiles of gray_sum_kernel and augment_kernel
    FastDiv by_ow;
};

// Jitter ops [from, to) of p on one pixel of nc channels.
__device__ inline void jitter_pixel(const ViewParams& p, int nc, int from, int to, float mean, float v[3]) {
    // The order as one word: indexing p.ops with a loop variable would keep the parameters in
    // local memory (a stack frame) instead of registers.
    const uint32_t order = uint32_t(p.ops[0]) | uint32_t(p.ops[1]) << 8 | uint32_t(p.ops[2]) << 16 | uint32_t(p.ops[3]) << 24;
    for (int k = from; k < to; ++k) {
        switch ((order >> (8 * k)) & 0xffu) {
            case kBrightness: {
                const Blend bl(p.brightness);
#pragma unroll
                for (int c = 0; c < 3; ++c)
                    if (c < nc) v[c] = bl(v[c], 0.f);
                break;
            }
            case kContrast: {
                const Blend bl(p.contrast);
#pragma unroll
                for (int c = 0; c < 3; ++c)
                    if (c < nc) v[c] = bl(v[c], mean);
                break;
            }
            case kSaturation:
                if (nc == 3) {
                    const Blend bl(p.saturation);
                    const float g = gray_of(v[0], v[1], v[2]);
#pragma unroll
                    for (int c = 0; c < 3; ++c) v[c] = bl(v[c], g);
                }
                break;
            case kHue:
                if (nc == 3) hue_shift(v[0], v[1], v[2], p.hue);
                break;
        }
    }
}

// The bilinear taps of rows [y0, y0 + rows) and of every column, for one view, into shared memory
// (row taps first, then ow column taps); the caller synchronises before reading them.
__device__ inline void make_taps(LinearTap* taps, const Geometry& g, const ViewParams& p, int32_t y0, int32_t rows) {
    const float sy = tap_scale(p.crop_h, g.oh), sx = tap_scale(p.crop_w, g.ow);
    for (int32_t k = threadIdx.x; k < rows + g.ow; k += blockDim.x)
        taps[k] = k < rows ? linear_tap_scaled(y0 + k, p.crop_h, sy, p.crop_top)
                           : linear_tap_scaled(k - rows, p.crop_w, sx, p.crop_left);
}

// Bilinear sample of the crop at the taps (ty, tx), channels [0, in_c), in [0, 1].
__device__ inline void sample_at(const uint8_t* __restrict__ img, const float* unit, const Geometry& g,
                                 const LinearTap& ty, const LinearTap& tx, float v[3]) {
    const int64_t row0 = int64_t(ty.i0) * g.in_w, row1 = int64_t(ty.i1) * g.in_w;
#pragma unroll
    for (int c = 0; c < 3; ++c) {  // unrolled with a guard, so that v stays in registers
        if (c >= g.in_c) break;
        const float a = unit[__ldg(img + (row0 + tx.i0) * g.in_c + c)];
        const float b = unit[__ldg(img + (row0 + tx.i1) * g.in_c + c)];
        const float d = unit[__ldg(img + (row1 + tx.i0) * g.in_c + c)];
        const float e = unit[__ldg(img + (row1 + tx.i1) * g.in_c + c)];
        const float h0 = tx.w0 * a + tx.w1 * b;
        const float h1 = tx.w0 * d + tx.w1 * e;
        v[c] = ty.w0 * h0 + ty.w1 * h1;
    }
    if (g.nc == 3 && g.in_c == 1) v[1] = v[2] = v[0];
}

// Where contrast sits in the view's jitter order (n_ops when it is not applied).
__device__ inline int contrast_index(const ViewParams& p) {
    int kc = p.n_ops;
#pragma unroll
    for (int k = 0; k < 4; ++k)
        if (k < p.n_ops && p.ops[k] == kContrast) kc = k;
    return kc;
}

// i / 255.f for every byte i: the CPU's table (ssl/augment.cpp), the same values as the division
// without twelve IEEE divisions per pixel.
__device__ inline void fill_unit(float* unit) {
    for (int b = threadIdx.x; b < 256; b += blockDim.x) unit[b] = float(b) / 255.f;
}

// One thread per (image, view): view v of image i at params_out[v * n + i].
__global__ void draw_kernel(Geometry g, const int64_t* __restrict__ samples, const ViewParams* __restrict__ given,
                            AugmentConfig cfg, uint64_t seed, int64_t epoch, int n_views,
                            ViewParams* __restrict__ params_out) {
    const int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (k >= int64_t(n_views) * g.n) return;
    const int view = int(k / g.n);
    const int32_t i = int32_t(k - int64_t(view) * g.n);
    params_out[k] = given ? given[i] : draw_view_params(seed, epoch, samples[i], view, cfg, g.in_h, g.in_w);
}

// Grid (image, row tile, view): for views with contrast, the tile's sum of the gray image just
// before contrast.
__global__ void __launch_bounds__(kThreads)
gray_sum_kernel(const uint8_t* __restrict__ images, Geometry g, const ViewParams* __restrict__ params,
                double* __restrict__ tile_sums) {
    const int32_t i = blockIdx.x, tile = blockIdx.y;
    const int64_t pv = int64_t(blockIdx.z) * g.n + i;
    const ViewParams p = params[pv];
    const int kc = contrast_index(p);
    if (kc == p.n_ops) return;  // uniform over the block, before any barrier
    extern __shared__ LinearTap taps[];
    __shared__ float unit[256];
    const int32_t y0 = tile * g.tile_rows, rows = min(g.tile_rows, g.oh - y0);
    fill_unit(unit);
    make_taps(taps, g, p, y0, rows);
    __syncthreads();
    const uint8_t* img = images + int64_t(i) * g.in_h * g.in_w * g.in_c;
    double s = 0;
    for (int32_t e = threadIdx.x; e < rows * g.ow; e += blockDim.x) {
        const int32_t ty = int32_t(g.by_ow.div(uint32_t(e))), x = e - ty * g.ow;
        float v[3];
        sample_at(img, unit, g, taps[ty], taps[rows + x], v);
        jitter_pixel(p, g.nc, 0, kc, 0.f, v);
        s += g.nc == 3 ? gray_of(v[0], v[1], v[2]) : v[0];
    }
    s = cuda::block_reduce(s, cuda::SumOp{});
    if (threadIdx.x == 0) tile_sums[pv * g.tiles + tile] = s;
}

// Grid (image, row tile, view): the whole chain for the tile's pixels.
__global__ void __launch_bounds__(kThreads)
augment_kernel(const uint8_t* __restrict__ images, Geometry g, const ViewParams* __restrict__ params,
               const double* __restrict__ tile_sums, AugmentConfig cfg, float* __restrict__ view1,
               float* __restrict__ view2, float* __restrict__ scratch) {
    const int32_t i = blockIdx.x, tile = blockIdx.y;
    const int view = blockIdx.z;
    const int64_t pv = int64_t(view) * g.n + i;
    const ViewParams p = params[pv];
    const bool contrast = contrast_index(p) < p.n_ops;
    extern __shared__ LinearTap taps[];
    __shared__ float unit[256];
    __shared__ float mean_s;
    const int32_t y0 = tile * g.tile_rows, rows = min(g.tile_rows, g.oh - y0);
    fill_unit(unit);
    make_taps(taps, g, p, y0, rows);
    if (threadIdx.x == 0 && contrast) {
        double s = 0;  // tile by tile in order: every tile of the view gets the same mean
        for (int32_t t = 0; t < g.tiles; ++t) s += tile_sums[pv * g.tiles + t];
        mean_s = float(s / (double(g.oh) * double(g.ow)));
    }
    __syncthreads();
    const float mean = contrast ? mean_s : 0.f;

    const bool blur = p.blur_radius > 0;
    const bool gray = p.gray && g.nc == 3;
    const int nc = g.nc;
    // Normalising multiplies by 1/std where the CPU (and torchvision) divides: within an ulp or
    // two, and three IEEE divisions per pixel fewer.
    float inv_std[3];
#pragma unroll
    for (int c = 0; c < 3; ++c) inv_std[c] = 1.f / cfg.std[c];
    const uint8_t* img = images + int64_t(i) * g.in_h * g.in_w * g.in_c;
    const int64_t plane = int64_t(g.oh) * g.ow;
    float* out = (view == 0 ? view1 : view2) + int64_t(i) * nc * plane;
    float* pre = scratch + pv * nc * plane;
    // 32-bit pixel indices within the tile (a tile has at most a view's pixels, which the host
    // keeps below 2^31 - 1024).
    for (int32_t e = threadIdx.x; e < rows * g.ow; e += blockDim.x) {
        const int32_t ty = int32_t(g.by_ow.div(uint32_t(e))), x = e - ty * g.ow;
        float v[3];
        sample_at(img, unit, g, taps[ty], taps[rows + x], v);
        jitter_pixel(p, nc, 0, p.n_ops, mean, v);
        if (gray) v[0] = v[1] = v[2] = gray_of(v[0], v[1], v[2]);
        const int64_t y = y0 + ty;
        if (blur) {
            const int64_t o = y * g.ow + x;
#pragma unroll
            for (int c = 0; c < 3; ++c)
                if (c < nc) pre[c * plane + o] = v[c];
        } else {
            const int64_t o = y * g.ow + (p.flip ? g.ow - 1 - x : x);
#pragma unroll
            for (int c = 0; c < 3; ++c)
                if (c < nc) out[c * plane + o] = (v[c] - cfg.mean[c]) * inv_std[c];
        }
    }
}

__global__ void __launch_bounds__(kThreads)
blur_kernel(Geometry g, const ViewParams* __restrict__ params, int params_per_view, AugmentConfig cfg,
            int32_t tile_rows, int32_t max_radius, const float* __restrict__ scratch, float* __restrict__ view1,
            float* __restrict__ view2) {
    const int32_t i = blockIdx.x;
    const int view = blockIdx.z;
    const ViewParams& gp = params[int64_t(view) * params_per_view + i];
    const int32_t r = gp.blur_radius;
    if (r <= 0) return;  // uniform over the block: no barrier is skipped by only some threads
    if (r > max_radius) __trap();  // the shared-memory tile was sized for max_radius
    extern __shared__ float smem[];
    float* w = smem;                         // 2 * max_radius + 1 weights
    float* hb = smem + 2 * max_radius + 1;   // (tile_rows + 2 r) x ow horizontally blurred rows
    if (threadIdx.x == 0) gaussian_weights(gp.blur_sigma, r, w);
    const bool flip = gp.flip != 0;
    __syncthreads();

    const int32_t nc = g.nc, ow = g.ow, oh = g.oh;
    const int64_t plane = int64_t(oh) * ow;
    const int32_t y0 = blockIdx.y * tile_rows;
    const int32_t rows = min(tile_rows, oh - y0);
    const int32_t halo_rows = rows + 2 * r;
    const float* pre = scratch + (int64_t(view) * g.n + i) * nc * plane;
    float* out = (view == 0 ? view1 : view2) + int64_t(i) * nc * plane;
    for (int c = 0; c < nc; ++c) {
        const float* pl = pre + c * plane;
        const float inv_std = 1.f / cfg.std[c];  // as augment_kernel normalises
        for (int32_t e = threadIdx.x; e < halo_rows * ow; e += blockDim.x) {
            const int32_t hr = e / ow, x = e % ow;
            const float* src = pl + int64_t(reflect_index(y0 - r + hr, oh)) * ow;
            float acc = 0.f;
            if (x >= r && x + r < ow) {  // the taps stay inside the row: reflect_index is the identity
                for (int32_t k = 0; k <= 2 * r; ++k) acc += w[k] * __ldg(src + x - r + k);
            } else {
                for (int32_t k = 0; k <= 2 * r; ++k) acc += w[k] * __ldg(src + reflect_index(x - r + k, ow));
            }
            hb[e] = acc;
        }
        __syncthreads();
        for (int32_t e = threadIdx.x; e < rows * ow; e += blockDim.x) {
            const int32_t ty = e / ow, x = e % ow;
            float acc = 0.f;
            for (int32_t k = 0; k <= 2 * r; ++k) acc += w[k] * hb[(ty + k) * ow + x];
            const int64_t o = int64_t(y0 + ty) * ow + (flip ? ow - 1 - x : x);
            out[c * plane + o] = (acc - cfg.mean[c]) * inv_std;
        }
        __syncthreads();
    }
}

// Rows per tile of gray_sum_kernel and augment_kernel: about kTilePixels pixels, at least one row.
int32_t tile_rows_for(int32_t oh, int32_t ow) {
    return std::max<int32_t>(1, std::min<int32_t>(oh, (kTilePixels + ow - 1) / std::max<int32_t>(ow, 1)));
}

}  // namespace

int64_t augment_cuda_tile_sums(int64_t n, int n_views, int32_t out_h, int32_t out_w) {
    const int32_t rows = tile_rows_for(out_h, out_w);
    return int64_t(n_views) * n * ((out_h + rows - 1) / rows);
}

void augment_views_cuda(const uint8_t* images, int32_t n, int32_t in_h, int32_t in_w, int32_t in_c,
                        const int64_t* samples, const ViewParams* params, const AugmentConfig& cfg, uint64_t seed,
                        int64_t epoch, int n_views, int32_t max_radius, float* view1, float* view2,
                        float* scratch, ViewParams* params_out, double* tile_sums, void* stream_ptr) {
    HPT_CHECK(n_views == 1 || n_views == 2, "augment (cuda): 1 or 2 views, got ", n_views);
    HPT_CHECK(in_c == 1 || in_c == 3, "augment (cuda): 1 or 3 channels, got ", in_c);
    if (n == 0) return;  // before the pointer checks: an empty batch's tensors have no storage
    HPT_CHECK((params != nullptr) != (samples != nullptr), "augment (cuda): give either samples or params");
    HPT_CHECK(!params || n_views == 1, "augment (cuda): explicit params make one view");
    HPT_CHECK(params_out, "augment (cuda): params_out is required (the pixel passes read it)");
    HPT_CHECK(tile_sums, "augment (cuda): tile_sums is required (augment_cuda_tile_sums entries)");
    // The kernels step 32-bit pixel indices by their block size past the last pixel.
    HPT_CHECK(int64_t(cfg.out_h) * cfg.out_w <= INT32_MAX - 1024, "augment (cuda): views of ", cfg.out_h, "x",
              cfg.out_w, " pixels are too large");
    cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
    const int32_t rows = tile_rows_for(cfg.out_h, cfg.out_w);
    const Geometry g{n,        in_h, in_w, in_c, int32_t(view_channels(cfg, in_c)), cfg.out_h, cfg.out_w,
                     rows,     int32_t((cfg.out_h + rows - 1) / rows), FastDiv(cfg.out_w)};
    const int64_t views = int64_t(n_views) * n;
    // Grid y counts row tiles, at most one per row.
    HPT_CHECK(g.oh <= 65535, "augment (cuda): views of ", cfg.out_h, " rows are too tall");

    draw_kernel<<<unsigned((views + kThreads - 1) / kThreads), kThreads, 0, stream>>>(g, samples, params, cfg, seed,
                                                                                     epoch, n_views, params_out);
    HPT_CUDA_LAUNCH_CHECK("augment draw_kernel");

    const size_t tap_bytes = size_t(rows + g.ow) * sizeof(LinearTap);
    cuda::allow_dynamic_smem(gray_sum_kernel, tap_bytes, "augment (cuda): the bilinear taps of views ", g.ow,
                             " pixels wide");
    cuda::allow_dynamic_smem(augment_kernel, tap_bytes, "augment (cuda): the bilinear taps of views ", g.ow,
                             " pixels wide");
    const dim3 grid(unsigned(n), unsigned(g.tiles), unsigned(n_views));
    if (params || may_draw_contrast(cfg)) {  // explicit parameters may have contrast whatever cfg says
        gray_sum_kernel<<<grid, kThreads, tap_bytes, stream>>>(images, g, params_out, tile_sums);
        HPT_CUDA_LAUNCH_CHECK("augment gray_sum_kernel");
    }
    augment_kernel<<<grid, kThreads, tap_bytes, stream>>>(images, g, params_out, tile_sums, cfg, view1, view2, scratch);
    HPT_CUDA_LAUNCH_CHECK("augment_kernel");

    const int32_t max_r = max_radius;
    if (max_r <= 0) return;
    int32_t tile = std::min(kTileRows, g.oh);
    auto smem_bytes = [&](int32_t t) { return size_t(2 * max_r + 1 + (t + 2 * max_r) * g.ow) * sizeof(float); };
    while (tile > 1 && smem_bytes(tile) > 48 * 1024) --tile;
    const size_t bytes = smem_bytes(tile);
    cuda::allow_dynamic_smem(blur_kernel, bytes, "augment (cuda): rows of ", g.ow, " pixels with blur radius ", max_r);
    const unsigned tiles = unsigned((g.oh + tile - 1) / tile);
    blur_kernel<<<dim3(unsigned(n), tiles, unsigned(n_views)), kThreads, bytes, stream>>>(
        g, params_out, n, cfg, tile, max_r, scratch, view1, view2);
    HPT_CUDA_LAUNCH_CHECK("augment blur_kernel");
}

}  // namespace hpt::ssl
