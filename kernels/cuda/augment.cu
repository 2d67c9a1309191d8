// GPU augmentation: both views of a u8 NHWC batch in one launch, the Gaussian blur as a second,
// separable pass. Mirrors the CPU specification in ssl/augment.cpp: the same parameter draws
// (draw_view_params) and the same per-pixel formulas (ssl/augment_pixel.h), in the same order;
// only the final normalisation multiplies by 1/std where the CPU divides.
//
// Kernel 1 (augment_kernel): one block per (image, view). Thread 0 draws the view's parameters.
//   Contrast needs the mean of the gray image at its place in the jitter order, so when contrast
//   is drawn the block first sweeps the pixels to that point and reduces the gray sum (sweep A),
//   then recomputes every pixel from the u8 source with the whole chain (sweep B): recomputing
//   from the cached 2x2 source neighbourhood is cheaper than storing and re-reading floats.
//   Views without blur are normalised and flipped straight into the output; blurred views write
//   their pre-blur values to `scratch`.
// Kernel 2 (blur_kernel): one block per (image, row tile, view); blocks of unblurred views exit.
//   Per channel it loads the tile's rows plus a halo of `radius` rows, blurs them horizontally
//   into shared memory (reflect padding), then blurs vertically, normalises and flips into the
//   output. Same summation order as the CPU (horizontal first, taps left to right).
#include <cstdint>
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "engine/core/error.h"
#include "kernels/cuda/check.h"
#include "ssl/augment.h"
#include "ssl/augment_pixel.h"

namespace hpt::ssl {
namespace {

constexpr int kThreads = 256;
constexpr int kTileRows = 16;

struct Geometry {
    int32_t n, in_h, in_w, in_c, nc, oh, ow;
};

// What every pixel of a view shares: i / 255.f for every byte i (the CPU's table, ssl/augment.cpp:
// the same values as the division, without twelve IEEE divisions per pixel) and the crop's scale
// along each axis (a division each).
struct Sampler {
    const float* unit;
    float sy, sx;
};

// Bilinear sample of output pixel (y, x) of the crop, channels [0, in_c), in [0, 1].
__device__ inline void sample_pixel(const uint8_t* __restrict__ img, const Sampler& sm, const Geometry& g,
                                    const ViewParams& p, int32_t y, int32_t x, float v[3]) {
    const float* unit = sm.unit;
    const LinearTap ty = linear_tap_scaled(y, p.crop_h, sm.sy, p.crop_top);
    const LinearTap tx = linear_tap_scaled(x, p.crop_w, sm.sx, p.crop_left);
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

// Jitter ops [from, to) of p on one pixel of nc channels.
__device__ inline void jitter_pixel(const ViewParams& p, int nc, int from, int to, float mean, float v[3]) {
    for (int k = from; k < to; ++k) {
        switch (p.ops[k]) {
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

__device__ inline double block_sum(double v, double* shared32) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) shared32[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < int(blockDim.x >> 5) ? shared32[lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
        if (lane == 0) shared32[0] = v;
    }
    __syncthreads();
    return shared32[0];
}

__global__ void __launch_bounds__(kThreads)
augment_kernel(const uint8_t* __restrict__ images, Geometry g, const int64_t* __restrict__ samples,
               const ViewParams* __restrict__ given, AugmentConfig cfg, uint64_t seed, int64_t epoch,
               float* __restrict__ view1, float* __restrict__ view2, float* __restrict__ scratch,
               ViewParams* __restrict__ params_out) {
    const int32_t i = blockIdx.x;
    const int view = blockIdx.y;
    // Raw bytes: a __shared__ variable cannot have ViewParams' default member initialisers.
    __shared__ alignas(ViewParams) unsigned char sp_raw[sizeof(ViewParams)];
    __shared__ double red[32];
    __shared__ float unit[256];
    for (int b = threadIdx.x; b < 256; b += blockDim.x) unit[b] = float(b) / 255.f;
    ViewParams& sp = *reinterpret_cast<ViewParams*>(sp_raw);
    if (threadIdx.x == 0) {
        sp = given ? given[i] : draw_view_params(seed, epoch, samples[i], view, cfg, g.in_h, g.in_w);
        params_out[int64_t(view) * g.n + i] = sp;
    }
    __syncthreads();
    const ViewParams p = sp;
    const Sampler sm{unit, tap_scale(p.crop_h, g.oh), tap_scale(p.crop_w, g.ow)};
    const uint8_t* img = images + int64_t(i) * g.in_h * g.in_w * g.in_c;
    const int64_t plane = int64_t(g.oh) * g.ow;
    const int nc = g.nc;

    int kc = p.n_ops;
    for (int k = 0; k < p.n_ops; ++k)
        if (p.ops[k] == kContrast) kc = k;
    float mean = 0.f;
    if (kc < p.n_ops) {  // sweep A: the gray mean where contrast sits in the order
        double s = 0;
        for (int32_t e = threadIdx.x; e < int32_t(plane); e += blockDim.x) {
            float v[3];
            sample_pixel(img, sm, g, p, e / g.ow, e % g.ow, v);
            jitter_pixel(p, nc, 0, kc, 0.f, v);
            s += nc == 3 ? gray_of(v[0], v[1], v[2]) : v[0];
        }
        mean = float(block_sum(s, red) / double(plane));
    }

    const bool blur = p.blur_radius > 0;
    const bool gray = p.gray && nc == 3;
    // Normalising multiplies by 1/std where the CPU (and torchvision) divides: within an ulp or
    // two, and three IEEE divisions per pixel fewer.
    float inv_std[3];
#pragma unroll
    for (int c = 0; c < 3; ++c) inv_std[c] = 1.f / cfg.std[c];
    float* out = (view == 0 ? view1 : view2) + int64_t(i) * nc * plane;
    float* pre = scratch + (int64_t(view) * g.n + i) * nc * plane;
    // 32-bit pixel indices (the host checks that a view has fewer than 2^31 - 1024 pixels): a 64-bit
    // division is a software routine of tens of instructions, here once per pixel.
    for (int32_t e = threadIdx.x; e < int32_t(plane); e += blockDim.x) {  // sweep B
        const int32_t y = e / g.ow, x = e % g.ow;
        float v[3];
        sample_pixel(img, sm, g, p, y, x, v);
        jitter_pixel(p, nc, 0, p.n_ops, mean, v);
        if (gray) v[0] = v[1] = v[2] = gray_of(v[0], v[1], v[2]);
        if (blur) {
#pragma unroll
            for (int c = 0; c < 3; ++c)
                if (c < nc) pre[c * plane + e] = v[c];
        } else {
            const int64_t o = int64_t(y) * g.ow + (p.flip ? g.ow - 1 - x : x);
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

}  // namespace

void augment_views_cuda(const uint8_t* images, int32_t n, int32_t in_h, int32_t in_w, int32_t in_c,
                        const int64_t* samples, const ViewParams* params, const AugmentConfig& cfg, uint64_t seed,
                        int64_t epoch, int n_views, int32_t max_radius, float* view1, float* view2,
                        float* scratch, ViewParams* params_out, void* stream_ptr) {
    HPT_CHECK(n_views == 1 || n_views == 2, "augment (cuda): 1 or 2 views, got ", n_views);
    HPT_CHECK((params != nullptr) != (samples != nullptr), "augment (cuda): give either samples or params");
    HPT_CHECK(!params || n_views == 1, "augment (cuda): explicit params make one view");
    HPT_CHECK(params_out, "augment (cuda): params_out is required (the blur pass reads it)");
    HPT_CHECK(in_c == 1 || in_c == 3, "augment (cuda): 1 or 3 channels, got ", in_c);
    // The kernels step 32-bit pixel indices by their block size past the last pixel.
    HPT_CHECK(int64_t(cfg.out_h) * cfg.out_w <= INT32_MAX - 1024, "augment (cuda): views of ", cfg.out_h, "x",
              cfg.out_w, " pixels are too large");
    if (n == 0) return;
    cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
    const Geometry g{n, in_h, in_w, in_c, int32_t(view_channels(cfg, in_c)), cfg.out_h, cfg.out_w};

    augment_kernel<<<dim3(unsigned(n), unsigned(n_views)), kThreads, 0, stream>>>(
        images, g, samples, params, cfg, seed, epoch, view1, view2, scratch, params_out);
    HPT_CUDA_LAUNCH_CHECK("augment_kernel");

    const int32_t max_r = max_radius;
    if (max_r <= 0) return;
    int32_t tile = std::min(kTileRows, g.oh);
    auto smem_bytes = [&](int32_t t) { return size_t(2 * max_r + 1 + (t + 2 * max_r) * g.ow) * sizeof(float); };
    while (tile > 1 && smem_bytes(tile) > 48 * 1024) --tile;
    const size_t bytes = smem_bytes(tile);
    if (bytes > 48 * 1024) {
        int dev = 0, optin = 0;
        HPT_CUDA_CHECK(cudaGetDevice(&dev));
        HPT_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
        HPT_CHECK(bytes <= size_t(optin), "augment (cuda): rows of ", g.ow, " pixels with blur radius ", max_r,
                  " need ", bytes, " bytes of shared memory; the device has ", optin);
        HPT_CUDA_CHECK(cudaFuncSetAttribute(blur_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
    }
    const unsigned tiles = unsigned((g.oh + tile - 1) / tile);
    blur_kernel<<<dim3(unsigned(n), tiles, unsigned(n_views)), kThreads, bytes, stream>>>(
        g, params ? params : params_out, params ? 0 : n, cfg, tile, max_r, scratch, view1, view2);
    HPT_CUDA_LAUNCH_CHECK("augment blur_kernel");
}

}  // namespace hpt::ssl
