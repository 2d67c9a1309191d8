// Device-side copies shared by the CUDA kernels (copy.cu implements them).
#pragma once
#include "engine/core/tensor.h"

namespace hpt::cuda {

// dst = src on the current device: strided, broadcasting (src already has dst's shape or
// broadcasts to it) and converting dtype. A 0-dim CPU src is a number. Same-dtype contiguous
// copies are one cudaMemcpyAsync.
void copy_on_device(const Tensor& dst, const Tensor& src);

// Fills a device tensor with zeros (cudaMemsetAsync when contiguous).
void zero_on_device(const Tensor& t);

}  // namespace hpt::cuda
