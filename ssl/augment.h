// The MoCo v2 / HPT augmentation policy (DESIGN.md §2): two independent views of every image,
//   1. RandomResizedCrop to (out_h, out_w): area scale U(0.2, 1), log-uniform ratio in [3/4, 4/3],
//      10 attempts, then torchvision's centre-crop fallback; bilinear resize
//   2. ColorJitter with p = 0.8: brightness, contrast, saturation 0.4, hue 0.4, in random order
//   3. RandomGrayscale p = 0.2 (keeps the channel count)
//   4. GaussianBlur p = 0.5, sigma U(0.1, 2.0), radius ceil(3 sigma), separable, reflect padding
//   5. horizontal flip p = 0.5
//   6. normalize with the dataset's own per-channel mean/std
// with torchvision 0.14's semantics on float images in [0, 1] (functional_tensor.py; formulas in
// ssl/augment_pixel.h), clamping to [0, 1] after every colour op.
//
// Resize convention: bilinear with half-pixel centres (align_corners=False) and no antialiasing,
// exactly torchvision's tensor path with antialias=False (its default for tensors in 0.14). Why:
// the GPU kernel computes each output pixel from its 2x2 source neighbourhood, so CPU and GPU can
// agree pixel by pixel and the peer (torchvision on tensors) computes the same function. For
// these crops (scale >= 0.2 of a small image) the resize mostly upsamples, where antialiasing
// changes nothing; it only matters when a crop shrinks by more than 2x.
//
// The pipeline works on float values from the u8 input to the end: no intermediate rounding to
// u8 (torchvision on u8 tensors rounds after each op; on PIL images too).
//
// Named policies (the paper's robustness study):
//   full       everything above
//   no_gray    without RandomGrayscale
//   no_color   without ColorJitter and RandomGrayscale
//   crop_blur  crop + blur only (no colour, no flip)
//   crop_only  crop only (no colour, no blur, no flip)
//
// Grayscale (1-channel) inputs: saturation, hue and grayscale are no-ops (as in torchvision),
// brightness and contrast apply; with gray_to_rgb the image is replicated to 3 channels first.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/tensor.h"
#include "ssl/augment_params.h"

namespace hpt::ssl {

// A config with the named policy's transforms switched off (the others at DESIGN.md §2's values,
// hue 0.4) and out_h = out_w = out_size. Throws on an unknown name.
AugmentConfig augment_policy(const std::string& name, int32_t out_size);
// Switches off what the named policy excludes, keeping every other field of `cfg`.
void apply_policy(AugmentConfig& cfg, const std::string& name);
const std::vector<std::string>& policy_names();

// Sets mean/std (one entry per input channel, [0, 1] units, e.g. data::channel_mean_std of the
// training split); a single entry is used for all three channels when gray_to_rgb replicates.
void set_normalization(AugmentConfig& cfg, const std::vector<double>& mean, const std::vector<double>& std);

// Throws naming the field when a config cannot be used (probabilities outside [0, 1], empty or
// negative ranges, hue above 0.5, blur radius above kMaxBlurRadius, std <= 0, ...). Every entry
// point checks it before any thread starts.
void check_config(const AugmentConfig& cfg);

// Channels of the views for an input with `in_c` channels (1 or 3).
int64_t view_channels(const AugmentConfig& cfg, int64_t in_c);

// Both views of every image of a u8 NHWC batch: f32 [N, C', out_h, out_w] each, normalised.
// samples[i] is the dataset index of image i: with (seed, epoch) it keys the view's draws.
// CPU batches run on the CPU (parallel over images); CUDA batches run the CUDA kernels
// (kernels/cuda/augment.cu) on the device's current stream and return CUDA tensors.
std::pair<Tensor, Tensor> augment_batch(const Tensor& images, const std::vector<int64_t>& samples,
                                        const AugmentConfig& cfg, uint64_t seed, int64_t epoch);

// As augment_batch, into given contiguous f32 [N, C', out_h, out_w] tensors on the images' device
// (buffers reused across batches: no allocation, no first-touch page faults). `threads`: CPU
// threads to use (0: num_threads()); views are spread dynamically (their costs differ), and each
// is made whole by one thread, so the result does not depend on it.
void augment_batch_into(const Tensor& images, const std::vector<int64_t>& samples, const AugmentConfig& cfg,
                        uint64_t seed, int64_t epoch, const Tensor& view1, const Tensor& view2, int threads = 0);

// View `view` (0 or 1) of every image alone: the same values as that view of augment_batch for
// the same samples. Data-parallel ranks use it to make the queries of their own images and the
// keys of the shuffled images they were handed.
Tensor augment_view(const Tensor& images, const std::vector<int64_t>& samples, int view, const AugmentConfig& cfg,
                    uint64_t seed, int64_t epoch, int threads = 0);

// One view per image with explicitly given parameters (tests, plain evaluation batches): f32
// [N, C', out_h, out_w]. On the CPU or on CUDA, like augment_batch.
Tensor apply_views(const Tensor& images, const std::vector<ViewParams>& params, const AugmentConfig& cfg,
                   int threads = 0);

// Parameters that only resize the whole image (no crop, colour, blur or flip).
ViewParams identity_params(int32_t in_h, int32_t in_w);

// Throws unless p's crop box lies inside an in_h x in_w image and its ops are valid.
void check_params(const ViewParams& p, int32_t in_h, int32_t in_w);

// The CPU specification for one view: `src` is one u8 HWC image, `out` receives C' planes of
// out_h x out_w floats.
void augment_view_cpu(const uint8_t* src, int32_t in_h, int32_t in_w, int32_t in_c, const ViewParams& p,
                      const AugmentConfig& cfg, float* out);

#ifdef HPT_WITH_CUDA
// The CUDA launcher (kernels/cuda/augment.cu); all pointers are device pointers, `stream` a
// cudaStream_t (nullptr: the legacy default stream; hpt's callers pass its current stream). Views in `n_views` (1 or 2) output arrays
// [N, C', out_h, out_w]. With `params` null the kernel draws each view's parameters from
// (seed, epoch, samples[i], view) and writes them to `params_out`;
// otherwise params[i] is used for image i (n_views must be 1). `max_radius` bounds every view's
// blur radius (max_blur_radius(cfg) for drawn views; the largest given otherwise): it sizes the
// blur pass's shared memory. `scratch` holds n_views * N * C' * out_h * out_w floats (the
// pre-blur values of blurred views); `params_out` n_views * N entries (the pixel passes read them);
// `tile_sums` augment_cuda_tile_sums(...) doubles (the contrast means' partial sums).
void augment_views_cuda(const uint8_t* images, int32_t n, int32_t in_h, int32_t in_w, int32_t in_c,
                        const int64_t* samples, const ViewParams* params, const AugmentConfig& cfg, uint64_t seed,
                        int64_t epoch, int n_views, int32_t max_radius, float* view1, float* view2,
                        float* scratch, ViewParams* params_out, double* tile_sums, void* stream);
int64_t augment_cuda_tile_sums(int64_t n, int n_views, int32_t out_h, int32_t out_w);
#endif

}  // namespace hpt::ssl
