// A pointwise convolution (1x1 kernel, stride 1, no padding or dilation, one group) is, sample by
// sample, a matrix product over channels: y[n] (O x HW) = w (O x C) x[n] (C x HW), and the input
// gradient gx[n] (C x HW) = w^T (C x O) gy[n] (O x HW). These describe both as one row-major
// batched GEMM over the samples, C[b] = op(A[b]) op(B[b]), for a backend's GEMM (the CUDA conv2d
// times it against cuDNN's algorithms: kernels/cuda/conv2d_cudnn.cpp). Contiguous NCHW
// operands; the weight is A, shared by every sample (stride 0).
#pragma once
#include <cstdint>

#include "engine/ops/attrs.h"

namespace hpt {

struct BatchedGemm {
    bool ta, tb;
    int64_t M, N, K;
    int64_t lda, sa, ldb, sb, ldc, sc;
    int64_t batch;
};

inline bool is_pointwise_conv(const Conv2dAttrs& p, int64_t kh, int64_t kw) {
    return kh == 1 && kw == 1 && p.groups == 1 && p.stride[0] == 1 && p.stride[1] == 1 && p.padding[0] == 0 &&
           p.padding[1] == 0 && p.dilation[0] == 1 && p.dilation[1] == 1;
}

// A = w [O, C], B = x [N, C, HW], C = y [N, O, HW].
inline BatchedGemm pointwise_forward_gemm(int64_t n, int64_t c, int64_t o, int64_t hw) {
    return {false, false, o, hw, c, c, 0, hw, c * hw, hw, o * hw, n};
}

// A = w [O, C] (transposed), B = gy [N, O, HW], C = gx [N, C, HW].
inline BatchedGemm pointwise_backward_data_gemm(int64_t n, int64_t c, int64_t o, int64_t hw) {
    return {true, false, c, hw, o, c, 0, hw, o * hw, hw, c * hw, n};
}

}  // namespace hpt
