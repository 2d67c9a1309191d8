// The backends' global switches set for one scope of a test and restored after it, also when the
// test fails: the CPU convolution path, and CUDA's TF32, determinism, exact convolutions,
// pipelined InfoNCE and the pointwise convolutions' GEMM. In a build without CUDA the CUDA ones do
// nothing, so a test body shared by every device can use them unconditionally.
#pragma once

#include "kernels/cpu/conv2d.h"
#ifdef HPT_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace hpt::test {

template <class T, T (*Get)(), void (*Set)(T)>
class SwitchScope {
public:
    explicit SwitchScope(T value) : was_(Get()) { Set(value); }
    ~SwitchScope() { Set(was_); }
    SwitchScope(const SwitchScope&) = delete;
    SwitchScope& operator=(const SwitchScope&) = delete;

private:
    T was_;
};

using CpuConvScope = SwitchScope<CpuConvImpl, cpu_conv_impl, set_cpu_conv_impl>;

#ifdef HPT_WITH_CUDA
using Tf32Scope = SwitchScope<bool, cuda_tf32, set_cuda_tf32>;
using DeterministicScope = SwitchScope<bool, cuda_deterministic, set_cuda_deterministic>;
using ExactConvScope = SwitchScope<bool, cuda_exact_conv, set_cuda_exact_conv>;
using InfoNcePipelineScope = SwitchScope<bool, cuda_info_nce_pipelined, set_cuda_info_nce_pipelined>;
using ConvGemmScope = SwitchScope<ConvGemm, cuda_conv_gemm, set_cuda_conv_gemm>;
#else
struct NoSwitch {
    explicit NoSwitch(bool) {}
};
using Tf32Scope = NoSwitch;
using DeterministicScope = NoSwitch;
using ExactConvScope = NoSwitch;
using InfoNcePipelineScope = NoSwitch;
#endif

}  // namespace hpt::test
