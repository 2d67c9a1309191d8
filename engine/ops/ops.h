// The engine's public op API. Every function checks its arguments (throwing hpt::Error that names
// the op and the shapes/dtypes/devices involved), runs the kernel of the tensors' device and, when
// grad mode is on and an input requires grad, records the op for backward.
//
// Binary ops broadcast with numpy rules and need equal dtypes; a plain number is turned into a
// 0-dim tensor of the other operand's dtype.
#pragma once
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "engine/core/tensor.h"
#include "engine/ops/attrs.h"

namespace hpt {

// ---- elementwise
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, double exponent);
Tensor neg(const Tensor& a);
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor relu(const Tensor& a);
Tensor clamp(const Tensor& a, std::optional<double> lo, std::optional<double> hi);
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);  // cond: u8, nonzero picks a
Tensor eq(const Tensor& a, const Tensor& b);  // u8 results
Tensor gt(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, double s);
Tensor operator-(const Tensor& a, double s);
Tensor operator*(const Tensor& a, double s);
Tensor operator/(const Tensor& a, double s);
Tensor operator+(double s, const Tensor& a);
Tensor operator-(double s, const Tensor& a);
Tensor operator*(double s, const Tensor& a);
Tensor operator/(double s, const Tensor& a);

// ---- reductions (empty dims = all dims)
Tensor sum(const Tensor& a, std::vector<int64_t> dims = {}, bool keepdim = false);
Tensor mean(const Tensor& a, std::vector<int64_t> dims = {}, bool keepdim = false);
std::pair<Tensor, Tensor> max(const Tensor& a, int64_t dim, bool keepdim = false);  // values, i64 indices
Tensor argmax(const Tensor& a, int64_t dim, bool keepdim = false);
// Sums `a` down to `shape` (the inverse of broadcasting `shape` to a.shape()).
Tensor sum_to(const Tensor& a, const Shape& shape);

// ---- linear algebra
Tensor matmul(const Tensor& a, const Tensor& b);  // [M,K]x[K,N], or batched [B,M,K]x[B,K,N]
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias = Tensor());  // x w^T + b

// ---- convolution, normalisation, pooling
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias = Tensor(), const Conv2dAttrs& p = {});
// Returns y. In training mode updates running_mean/var in place (when defined) with the average
// over groups of each group's mean and unbiased variance. A defined `residual` (x's shape) is added
// to the normalised values, and p.relu clamps the sum at 0: bitwise what add and relu would give.
Tensor batchnorm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                   const Tensor& running_var, const BatchNormAttrs& p, const Tensor& residual = Tensor());
Tensor max_pool2d(const Tensor& x, const Pool2dAttrs& p);
Tensor avg_pool2d(const Tensor& x, const Pool2dAttrs& p);
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w);

// ---- softmax and losses
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
// Mean over the batch of -log softmax(logits)[target]; logits [N,C], target i64 [N].
Tensor cross_entropy(const Tensor& logits, const Tensor& target);
// x / max(||x||_2, eps) along dim.
Tensor l2_normalize(const Tensor& x, int64_t dim = 1, double eps = 1e-12);

// ---- joining and indexing
Tensor cat(const std::vector<Tensor>& xs, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& x, int64_t size, int64_t dim = 0);  // views
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim = 0);
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);  // index: i64 1-D
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);        // index: i64, x's rank

// ---- kernels exposed for optimizers and initialisation (not recorded by autograd)
// param -= lr * (buf = momentum * buf + grad + weight_decay * param), in place, elementwise.
void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buf, const SgdAttrs& a);
void fill_random(const Tensor& out, const RandomAttrs& a);

}  // namespace hpt
