// The CPU conv2d has two implementations: direct loops (the specification; any float dtype) and
// oneDNN (f32 only, the fast path). Tests run both and compare them.
#pragma once
#include "engine/core/tensor.h"
#include "engine/ops/attrs.h"
#include <cstdint>

namespace hpt {

enum class CpuConvImpl { automatic, reference, onednn, im2col };
// automatic: for f32 the fastest of oneDNN's direct and Winograd convolutions and im2col+GEMM for
// the shape (a fixed rule, measured on our shapes: see conv2d.cpp), reference loops otherwise.
// onednn: oneDNN's direct convolution only (no Winograd: the exact sums of the loops, to f32
// rounding). The setting is global (tests and benches); HPT_CPU_CONV=reference|onednn|im2col sets
// it from the environment.
void set_cpu_conv_impl(CpuConvImpl impl);
CpuConvImpl cpu_conv_impl();

// oneDNN path (kernels/cpu/conv2d_onednn.cpp). Outputs may be undefined where not wanted.
// `winograd`: oneDNN's Winograd F(4x4, 3x3) algorithm where it has one for the shape (3x3, stride
// 1, f32, AVX-512), its direct convolution otherwise.
void conv2d_forward_onednn(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y, const Conv2dAttrs& p,
                           bool winograd = false);
void conv2d_backward_onednn(const Tensor& gy, const Tensor& x, const Tensor& w, const Tensor& gx, const Tensor& gw,
                            const Tensor& gb, const Conv2dAttrs& p, bool winograd = false);

// im2col + GEMM path (kernels/cpu/conv2d_im2col.cpp): f32, groups = 1, a column matrix of at
// most 256 MiB.
bool conv2d_im2col_fits(const Tensor& x, const Tensor& w, int64_t oh, int64_t ow, const Conv2dAttrs& p);
void conv2d_forward_im2col(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y, const Conv2dAttrs& p);
void conv2d_backward_im2col(const Tensor& gy, const Tensor& x, const Tensor& w, const Tensor& gx, const Tensor& gw,
                            const Tensor& gb, const Conv2dAttrs& p);

}  // namespace hpt
