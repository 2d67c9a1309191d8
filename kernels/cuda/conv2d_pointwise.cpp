// See conv2d_pointwise.h.
#include "kernels/cuda/conv2d_pointwise.h"

#include "engine/core/error.h"
#include "kernels/cuda/gemm.h"
#include "kernels/pointwise_conv.h"

namespace hpt::cuda {
namespace {

template <class T>
void run(const BatchedGemm& g, const Tensor& a, const Tensor& b, const Tensor& c) {
    gemm<T>(g.ta, g.tb, g.M, g.N, g.K, T(1), a.data<T>(), g.lda, g.sa, b.data<T>(), g.ldb, g.sb, T(0), c.data<T>(),
            g.ldc, g.sc, g.batch);
}

// C = op(A) op(B) per sample: A the weight, B and C the activations or their gradients.
void run_gemm(const char* what, const BatchedGemm& g, const Tensor& a, const Tensor& b, const Tensor& c) {
    for (const Tensor* t : {&a, &b, &c})
        HPT_CHECK(t->is_contiguous() && t->dtype() == c.dtype() && t->device() == c.device(), "conv2d ", what,
                  " as a GEMM: contiguous operands of one dtype on one device, got ", shape_str(t->shape()), " ",
                  dtype_name(t->dtype()), " on ", t->device().str());
    HPT_CHECK(a.dim() == 4 && a.size(2) == 1 && a.size(3) == 1, "conv2d ", what, " as a GEMM: a 1x1 weight, got ",
              shape_str(a.shape()));
    if (c.dtype() == DType::f32) return run<float>(g, a, b, c);
    HPT_CHECK(c.dtype() == DType::f64, "conv2d ", what, " as a GEMM: f32 or f64, got ", dtype_name(c.dtype()));
    run<double>(g, a, b, c);
}

}  // namespace

void pointwise_conv_forward(const Tensor& x, const Tensor& w, const Tensor& y) {
    HPT_CHECK(x.dim() == 4 && y.dim() == 4 && x.size(1) == w.size(1) && y.size(1) == w.size(0) &&
                  x.size(0) == y.size(0) && x.size(2) == y.size(2) && x.size(3) == y.size(3),
              "conv2d forward as a GEMM: x ", shape_str(x.shape()), ", w ", shape_str(w.shape()), ", y ",
              shape_str(y.shape()), " are not a pointwise convolution");
    run_gemm("forward", pointwise_forward_gemm(x.size(0), x.size(1), w.size(0), x.size(2) * x.size(3)), w, x, y);
}

void pointwise_conv_backward_data(const Tensor& gy, const Tensor& w, const Tensor& gx) {
    HPT_CHECK(gx.dim() == 4 && gy.dim() == 4 && gx.size(1) == w.size(1) && gy.size(1) == w.size(0) &&
                  gx.size(0) == gy.size(0) && gx.size(2) == gy.size(2) && gx.size(3) == gy.size(3),
              "conv2d backward data as a GEMM: gy ", shape_str(gy.shape()), ", w ", shape_str(w.shape()), ", gx ",
              shape_str(gx.shape()), " are not a pointwise convolution");
    run_gemm("backward data", pointwise_backward_data_gemm(gx.size(0), gx.size(1), w.size(0), gx.size(2) * gx.size(3)),
             w, gy, gx);
}

}  // namespace hpt::cuda
