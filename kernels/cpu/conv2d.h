// The CPU conv2d has two implementations: direct loops (the specification; any float dtype) and
// oneDNN (f32 only, the fast path). Tests run both and compare them.
#pragma once
#include "engine/core/tensor.h"
#include "engine/ops/attrs.h"

namespace hpt {

enum class CpuConvImpl { automatic, reference, onednn };
// automatic: oneDNN for f32, reference otherwise. The setting is global (for tests and benches).
void set_cpu_conv_impl(CpuConvImpl impl);
CpuConvImpl cpu_conv_impl();

// oneDNN path (kernels/cpu/conv2d_onednn.cpp). Outputs may be undefined where not wanted.
void conv2d_forward_onednn(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y, const Conv2dAttrs& p);
void conv2d_backward_onednn(const Tensor& gy, const Tensor& x, const Tensor& w, const Tensor& gx, const Tensor& gw,
                            const Tensor& gb, const Conv2dAttrs& p);

}  // namespace hpt
