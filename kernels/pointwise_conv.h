// A pointwise convolution (1x1 kernel, stride 1, no padding or dilation, one group) is, sample by
// sample, a matrix product over channels: y[n] (O x HW) = w (O x C) x[n] (C x HW), the input
// gradient gx[n] (C x HW) = w^T (C x O) gy[n] (O x HW), and the weight gradient
// gw (O x C) = sum over n of gy[n] (O x HW) x[n]^T (HW x C). These describe them as row-major
// batched GEMMs over the samples, C[b] = op(A[b]) op(B[b]), for a backend's GEMM (the CUDA conv2d
// times them against cuDNN's algorithms: kernels/cuda/conv2d_cudnn.cpp). Contiguous NCHW
// operands; in the forward and input gradient the weight is A, shared by every sample (stride 0).
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

// The weight gradient sums over samples, which one batched GEMM cannot do (its batch entries are
// independent), so it runs in two steps: `rounds` batched GEMMs add gy[n] x[n]^T into `parts`
// partial sums, sample n into partial n % parts (round r covers samples [r * parts, (r + 1) * parts)
// with beta = 0 in round 0 and 1 after), then one GEMM with a row of ones sums the partials:
// gw (1 x O*C) = ones (1 x parts) partials (parts x O*C). With parts == 1 the rounds write gw
// directly. `parts` depends only on the shape and the byte budget for the partials, so which
// samples are summed together, and in what order the partials are added, is fixed by the shape
// (within each GEMM the order is the GEMM library's).
struct PointwiseWeightGrad {
    int64_t n, parts, rounds;
    BatchedGemm round;   // A = gy, B = x, C = the partials (batch = parts; the last round may be short)
    BatchedGemm reduce;  // A = ones, B = the partials, C = gw
    int64_t batch(int64_t r) const { return r + 1 < rounds ? parts : n - r * parts; }
    int64_t a_offset(int64_t r) const { return r * parts * round.sa; }
    int64_t b_offset(int64_t r) const { return r * parts * round.sb; }
};

inline PointwiseWeightGrad pointwise_weight_grad_gemm(int64_t n, int64_t c, int64_t o, int64_t hw,
                                                      int64_t budget_bytes, int64_t elem_bytes) {
    PointwiseWeightGrad w;
    w.n = n;
    const int64_t per_part = o * c * elem_bytes;
    w.parts = per_part > 0 ? budget_bytes / per_part : n;
    w.parts = w.parts < 1 ? 1 : (w.parts > n ? n : w.parts);
    w.rounds = w.parts > 0 ? (n + w.parts - 1) / w.parts : 0;
    w.round = {false, true, o, c, hw, hw, o * hw, hw, c * hw, c, o * c, w.parts};
    w.reduce = {false, false, 1, o * c, w.parts, w.parts, 0, o * c, 0, o * c, 0, 1};
    return w;
}

}  // namespace hpt
