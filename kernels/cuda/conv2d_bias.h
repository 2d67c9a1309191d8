// The bias parts of the CUDA conv2d (conv2d_bias.cu), kept out of cuDNN's legacy bias calls.
#pragma once
#include "engine/core/tensor.h"

namespace hpt::cuda {

// y[n, o, :, :] += b[o] (y contiguous NCHW).
void conv2d_add_bias(const Tensor& y, const Tensor& b);
// gb[o] = sum over n, h, w of gy[n, o, h, w], accumulated in double in a fixed order.
void conv2d_bias_grad(const Tensor& gy, const Tensor& gb);

}  // namespace hpt::cuda
