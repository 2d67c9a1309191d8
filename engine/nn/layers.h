// The layers a ResNet and a MoCo head need. Parameter names follow PyTorch (weight, bias,
// running_mean, running_var, num_batches_tracked), so state dicts map one to one.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/core/random.h"
#include "engine/nn/module.h"
#include "engine/ops/attrs.h"

namespace hpt::nn {

class Conv2d : public Layer {
public:
    // Weights start with PyTorch's default init; models re-initialise as they need.
    Conv2d(int64_t in, int64_t out, int64_t kernel, Generator& g, int64_t stride = 1, int64_t padding = 0,
           bool bias = true, int64_t dilation = 1, int64_t groups = 1);
    std::string kind() const override { return "Conv2d"; }
    Tensor forward(const Tensor& x) override;
    Tensor weight, bias;
    Conv2dAttrs attrs;
};

class BatchNorm2d : public Layer {
public:
    explicit BatchNorm2d(int64_t channels, double momentum = 0.1, double eps = 1e-5);
    std::string kind() const override { return "BatchNorm2d"; }
    Tensor forward(const Tensor& x) override;
    // max(forward(x) [+ residual], 0) in one op: what a ResNet writes as relu(bn(x) + identity),
    // without the add's and the ReLU's passes over the activation.
    Tensor forward_relu(const Tensor& x, const Tensor& residual = Tensor());
    // Ghost-BN: statistics over this many equal groups of the batch in training mode.
    int64_t groups = 1;
    Tensor weight, bias, running_mean, running_var, num_batches_tracked;
    double momentum, eps;

private:
    Tensor apply(const Tensor& x, const Tensor& residual, bool relu);
};

class Linear : public Layer {
public:
    Linear(int64_t in, int64_t out, Generator& g, bool bias = true);
    std::string kind() const override { return "Linear"; }
    Tensor forward(const Tensor& x) override;
    Tensor weight, bias;
};

class ReLU : public Layer {
public:
    std::string kind() const override { return "ReLU"; }
    Tensor forward(const Tensor& x) override;
};

class MaxPool2d : public Layer {
public:
    MaxPool2d(int64_t kernel, int64_t stride, int64_t padding = 0);
    std::string kind() const override { return "MaxPool2d"; }
    Tensor forward(const Tensor& x) override;
    Pool2dAttrs attrs;
};

class AdaptiveAvgPool2d : public Layer {
public:
    AdaptiveAvgPool2d(int64_t h, int64_t w) : h_(h), w_(w) {}
    std::string kind() const override { return "AdaptiveAvgPool2d"; }
    Tensor forward(const Tensor& x) override;

private:
    int64_t h_, w_;
};

class Flatten : public Layer {
public:
    std::string kind() const override { return "Flatten"; }
    Tensor forward(const Tensor& x) override { return x.flatten(1); }
};

// Children named "0", "1", ... as in torch.nn.Sequential.
class Sequential : public Layer {
public:
    std::string kind() const override { return "Sequential"; }
    Tensor forward(const Tensor& x) override;
    template <class L>
    std::shared_ptr<L> add(std::shared_ptr<L> layer) {
        layers_.push_back(layer);
        return register_module(std::to_string(layers_.size() - 1), layer);
    }
    size_t size() const { return layers_.size(); }

private:
    std::vector<std::shared_ptr<Layer>> layers_;
};

}  // namespace hpt::nn
