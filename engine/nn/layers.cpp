#include "engine/nn/layers.h"

#include "engine/autograd/grad_mode.h"
#include "engine/nn/init.h"
#include "engine/ops/ops.h"
#include <cstdint>

namespace hpt::nn {

Conv2d::Conv2d(int64_t in, int64_t out, int64_t kernel, Generator& g, int64_t stride, int64_t padding, bool with_bias,
               int64_t dilation, int64_t groups) {
    HPT_CHECK(in > 0 && out > 0 && kernel > 0 && groups > 0 && in % groups == 0 && out % groups == 0,
              "Conv2d(", in, ", ", out, ", kernel ", kernel, ", groups ", groups, "): invalid sizes");
    attrs.stride[0] = attrs.stride[1] = stride;
    attrs.padding[0] = attrs.padding[1] = padding;
    attrs.dilation[0] = attrs.dilation[1] = dilation;
    attrs.groups = groups;
    Tensor w = empty({out, in / groups, kernel, kernel});
    default_uniform_(w, fan_in(w), g);
    weight = register_parameter("weight", w);
    if (with_bias) {
        Tensor b = empty({out});
        default_uniform_(b, fan_in(w), g);
        bias = register_parameter("bias", b);
    }
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight, bias, attrs); }

BatchNorm2d::BatchNorm2d(int64_t channels, double momentum_, double eps_) : momentum(momentum_), eps(eps_) {
    weight = register_parameter("weight", ones({channels}));
    bias = register_parameter("bias", zeros({channels}));
    running_mean = register_buffer("running_mean", zeros({channels}));
    running_var = register_buffer("running_var", ones({channels}));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, DType::i64));
}

Tensor BatchNorm2d::forward(const Tensor& x) { return apply(x, Tensor(), false); }

Tensor BatchNorm2d::forward_relu(const Tensor& x, const Tensor& residual) { return apply(x, residual, true); }

Tensor BatchNorm2d::apply(const Tensor& x, const Tensor& residual, bool relu) {
    BatchNormAttrs a;
    a.relu = relu;
    a.training = is_training();
    a.momentum = momentum;
    a.eps = eps;
    a.groups = a.training ? groups : 1;
    if (a.training) {
        NoGradGuard ng;
        num_batches_tracked.add_(scalar_tensor(1.0, DType::i64, num_batches_tracked.device()));
    }
    return batchnorm2d(x, weight, bias, running_mean, running_var, a, residual);
}

Linear::Linear(int64_t in, int64_t out, Generator& g, bool with_bias) {
    HPT_CHECK(in > 0 && out > 0, "Linear(", in, ", ", out, "): invalid sizes");
    Tensor w = empty({out, in});
    default_uniform_(w, in, g);
    weight = register_parameter("weight", w);
    if (with_bias) {
        Tensor b = empty({out});
        default_uniform_(b, in, g);
        bias = register_parameter("bias", b);
    }
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

Tensor ReLU::forward(const Tensor& x) { return relu(x); }

MaxPool2d::MaxPool2d(int64_t kernel, int64_t stride, int64_t padding) {
    attrs.kernel[0] = attrs.kernel[1] = kernel;
    attrs.stride[0] = attrs.stride[1] = stride;
    attrs.padding[0] = attrs.padding[1] = padding;
}

Tensor MaxPool2d::forward(const Tensor& x) { return max_pool2d(x, attrs); }

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) { return adaptive_avg_pool2d(x, h_, w_); }

Tensor Sequential::forward(const Tensor& x) {
    Tensor h = x;
    for (auto& l : layers_) h = l->forward(h);
    return h;
}

}  // namespace hpt::nn
