// The CUDA backend's global switches (TF32, determinism, exact convolutions) set for one scope of a test and restored
// after it, also when the test fails. In a build without CUDA they do nothing, so a test body
// shared by every device can use them unconditionally.
#pragma once

#ifdef HPT_WITH_CUDA
#include "kernels/cuda/runtime.h"
#endif

namespace hpt::test {

template <bool (*Get)(), void (*Set)(bool)>
class SwitchScope {
public:
    explicit SwitchScope(bool on) : was_(Get()) { Set(on); }
    ~SwitchScope() { Set(was_); }
    SwitchScope(const SwitchScope&) = delete;
    SwitchScope& operator=(const SwitchScope&) = delete;

private:
    bool was_;
};

#ifdef HPT_WITH_CUDA
using Tf32Scope = SwitchScope<cuda_tf32, set_cuda_tf32>;
using DeterministicScope = SwitchScope<cuda_deterministic, set_cuda_deterministic>;
using ExactConvScope = SwitchScope<cuda_exact_conv, set_cuda_exact_conv>;
using InfoNcePipelineScope = SwitchScope<cuda_info_nce_pipelined, set_cuda_info_nce_pipelined>;
#else
struct Tf32Scope {
    explicit Tf32Scope(bool) {}
};
struct DeterministicScope {
    explicit DeterministicScope(bool) {}
};
struct ExactConvScope {
    explicit ExactConvScope(bool) {}
};
struct InfoNcePipelineScope {
    explicit InfoNcePipelineScope(bool) {}
};
#endif

}  // namespace hpt::test
