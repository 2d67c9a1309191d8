// The pointwise convolution as one batched cuBLAS GEMM over the samples (kernels/pointwise_conv.h):
// a candidate that the CUDA conv2d's algorithm search times next to cuDNN's (conv2d_cudnn.cpp).
#pragma once
#include "engine/core/tensor.h"

namespace hpt::cuda {

// y = conv2d(x, w) for contiguous NCHW x [N, C, H, W], w [O, C, 1, 1], y [N, O, H, W]; f32 or f64.
void pointwise_conv_forward(const Tensor& x, const Tensor& w, const Tensor& y);
// The input gradient gx [N, C, H, W] of that convolution from gy [N, O, H, W].
void pointwise_conv_backward_data(const Tensor& gy, const Tensor& w, const Tensor& gx);

}  // namespace hpt::cuda
