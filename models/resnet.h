// ResNet-18/34/50 with torchvision's structure and parameter names (conv1, bn1, layer1.0.conv1,
// layer2.0.downsample.0/1, fc), so that state dicts map one to one in both directions.
//
// Options beyond torchvision: the small-image stem (3x3 conv, stride 1, no max-pool), a width
// multiplier on every stage's channels, 1- or 3-channel input, and as `fc` either nothing
// (pooled features), a linear classifier, or MoCo's projection head Linear-ReLU-Linear, whose
// children are named fc.0 and fc.2 exactly as in MoCo v2's encoders.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/random.h"
#include "engine/nn/layers.h"

namespace hpt::models {

enum class Head { none, classifier, mlp };

struct ResNetConfig {
    int depth = 18;             // 18, 34 or 50
    bool small_stem = false;    // 3x3 stride-1 stem, no max-pool (for 28-32 px images)
    double width = 1.0;         // multiplies 64/128/256/512
    int64_t in_channels = 3;
    Head head = Head::none;
    int64_t num_classes = 1000;  // Head::classifier
    int64_t proj_dim = 128;      // Head::mlp output
    std::string str() const;     // "resnet18-small-w0.25-in1-mlp128"
};

class BasicBlock : public nn::Layer {
public:
    static constexpr int64_t expansion = 1;
    BasicBlock(int64_t in, int64_t width, int64_t stride, Generator& g);
    std::string kind() const override { return "BasicBlock"; }
    Tensor forward(const Tensor& x) override;

private:
    std::shared_ptr<nn::Conv2d> conv1_, conv2_;
    std::shared_ptr<nn::BatchNorm2d> bn1_, bn2_;
    std::shared_ptr<nn::Sequential> downsample_;
};

class Bottleneck : public nn::Layer {
public:
    static constexpr int64_t expansion = 4;
    // torchvision v1.5: the stride sits on the 3x3 conv.
    Bottleneck(int64_t in, int64_t width, int64_t stride, Generator& g);
    std::string kind() const override { return "Bottleneck"; }
    Tensor forward(const Tensor& x) override;

private:
    std::shared_ptr<nn::Conv2d> conv1_, conv2_, conv3_;
    std::shared_ptr<nn::BatchNorm2d> bn1_, bn2_, bn3_;
    std::shared_ptr<nn::Sequential> downsample_;
};

class ResNet : public nn::Layer {
public:
    // Initialised as torchvision does: convs Kaiming normal (fan_out, ReLU gain), BN weight 1 and
    // bias 0, linear layers PyTorch's default uniform.
    ResNet(const ResNetConfig& cfg, Generator& g);
    std::string kind() const override { return "ResNet"; }
    // Images [N, C, H, W] -> the head's output, or pooled features [N, feature_dim()] without one.
    Tensor forward(const Tensor& x) override;
    Tensor features(const Tensor& x);  // pooled backbone features, never through `fc`
    int64_t feature_dim() const { return feature_dim_; }
    const ResNetConfig& config() const { return cfg_; }
    // Ghost BN: every BatchNorm2d computes training statistics over this many groups of the batch.
    void set_bn_groups(int64_t groups);
    std::vector<std::shared_ptr<nn::BatchNorm2d>> batchnorms() const { return bns_; }
    std::vector<std::shared_ptr<nn::Conv2d>> convs() const { return convs_; }
    // Re-initialises the head as DESIGN.md §2 asks at each stage: Kaiming normal (fan_in, ReLU
    // gain) weights and zero biases.
    void reset_head(Generator& g);
    std::shared_ptr<nn::Layer> head() const { return fc_; }

private:
    ResNetConfig cfg_;
    int64_t feature_dim_ = 0;
    std::shared_ptr<nn::Conv2d> conv1_;
    std::shared_ptr<nn::BatchNorm2d> bn1_;
    std::vector<std::shared_ptr<nn::Sequential>> layers_;
    std::shared_ptr<nn::Layer> fc_;
    std::vector<std::shared_ptr<nn::BatchNorm2d>> bns_;
    std::vector<std::shared_ptr<nn::Conv2d>> convs_;
};

}  // namespace hpt::models
