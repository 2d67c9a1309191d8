#include "models/resnet.h"

#include <cstdint>
#include <cmath>
#include <functional>
#include <sstream>

#include "engine/autograd/grad_mode.h"

#include "engine/nn/init.h"
#include "engine/ops/ops.h"

namespace hpt::models {

namespace {

std::shared_ptr<nn::Conv2d> conv(int64_t in, int64_t out, int64_t k, int64_t stride, Generator& g) {
    return std::make_shared<nn::Conv2d>(in, out, k, g, stride, k / 2, /*bias=*/false);
}

std::shared_ptr<nn::Sequential> downsample(int64_t in, int64_t out, int64_t stride, Generator& g) {
    if (stride == 1 && in == out) return nullptr;
    auto d = std::make_shared<nn::Sequential>();
    d->add(conv(in, out, 1, stride, g));
    d->add(std::make_shared<nn::BatchNorm2d>(out));
    return d;
}

int64_t scaled(int64_t c, double width) { return std::max<int64_t>(1, int64_t(std::lround(double(c) * width))); }

}  // namespace

std::string ResNetConfig::str() const {
    std::ostringstream os;
    os << "resnet" << depth << (small_stem ? "-small" : "") << "-w" << width << "-in" << in_channels;
    if (head == Head::classifier) os << "-fc" << num_classes;
    if (head == Head::mlp) os << "-mlp" << proj_dim;
    return os.str();
}

BasicBlock::BasicBlock(int64_t in, int64_t width, int64_t stride, Generator& g) {
    conv1_ = register_module("conv1", conv(in, width, 3, stride, g));
    bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm2d>(width));
    conv2_ = register_module("conv2", conv(width, width, 3, 1, g));
    bn2_ = register_module("bn2", std::make_shared<nn::BatchNorm2d>(width));
    if (auto d = downsample(in, width * expansion, stride, g)) downsample_ = register_module("downsample", d);
}

// relu(bn(.)) and relu(bn(.) + identity) are single fused ops (nn::BatchNorm2d::forward_relu),
// equal to the separate bn, add and relu to the bit.
Tensor BasicBlock::forward(const Tensor& x) {
    const Tensor h = bn1_->forward_relu(conv1_->forward(x));
    const Tensor h2 = conv2_->forward(h);
    return bn2_->forward_relu(h2, downsample_ ? downsample_->forward(x) : x);
}

Bottleneck::Bottleneck(int64_t in, int64_t width, int64_t stride, Generator& g) {
    conv1_ = register_module("conv1", conv(in, width, 1, 1, g));
    bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm2d>(width));
    conv2_ = register_module("conv2", conv(width, width, 3, stride, g));
    bn2_ = register_module("bn2", std::make_shared<nn::BatchNorm2d>(width));
    conv3_ = register_module("conv3", conv(width, width * expansion, 1, 1, g));
    bn3_ = register_module("bn3", std::make_shared<nn::BatchNorm2d>(width * expansion));
    if (auto d = downsample(in, width * expansion, stride, g)) downsample_ = register_module("downsample", d);
}

Tensor Bottleneck::forward(const Tensor& x) {
    Tensor h = bn1_->forward_relu(conv1_->forward(x));
    h = bn2_->forward_relu(conv2_->forward(h));
    h = conv3_->forward(h);
    return bn3_->forward_relu(h, downsample_ ? downsample_->forward(x) : x);
}

ResNet::ResNet(const ResNetConfig& cfg, Generator& g) : cfg_(cfg) {
    std::vector<int64_t> blocks;
    bool bottleneck = false;
    switch (cfg.depth) {
        case 18: blocks = {2, 2, 2, 2}; break;
        case 34: blocks = {3, 4, 6, 3}; break;
        case 50: blocks = {3, 4, 6, 3}, bottleneck = true; break;
        default: HPT_THROW("ResNet depth ", cfg.depth, " is not one of 18, 34, 50");
    }
    HPT_CHECK(cfg.width > 0 && cfg.in_channels > 0, "ResNet: width ", cfg.width, " and in_channels ", cfg.in_channels,
              " must be positive");
    const int64_t stem = scaled(64, cfg.width);
    conv1_ = register_module("conv1", cfg.small_stem ? std::make_shared<nn::Conv2d>(cfg.in_channels, stem, 3, g, 1, 1, false)
                                                     : std::make_shared<nn::Conv2d>(cfg.in_channels, stem, 7, g, 2, 3, false));
    bn1_ = register_module("bn1", std::make_shared<nn::BatchNorm2d>(stem));
    int64_t in = stem;
    for (int s = 0; s < 4; ++s) {
        const int64_t width = scaled(64 << s, cfg.width);
        auto layer = std::make_shared<nn::Sequential>();
        for (int64_t b = 0; b < blocks[size_t(s)]; ++b) {
            const int64_t stride = (b == 0 && s > 0) ? 2 : 1;
            if (bottleneck) {
                layer->add(std::make_shared<Bottleneck>(in, width, stride, g));
                in = width * Bottleneck::expansion;
            } else {
                layer->add(std::make_shared<BasicBlock>(in, width, stride, g));
                in = width * BasicBlock::expansion;
            }
        }
        layers_.push_back(register_module("layer" + std::to_string(s + 1), layer));
    }
    feature_dim_ = in;
    if (cfg.head == Head::classifier) {
        fc_ = register_module("fc", std::make_shared<nn::Linear>(in, cfg.num_classes, g));
    } else if (cfg.head == Head::mlp) {
        auto mlp = std::make_shared<nn::Sequential>();
        mlp->add(std::make_shared<nn::Linear>(in, in, g));
        mlp->add(std::make_shared<nn::ReLU>());
        mlp->add(std::make_shared<nn::Linear>(in, cfg.proj_dim, g));
        fc_ = register_module("fc", mlp);
    }
    // torchvision's initialisation: convs Kaiming normal (fan_out, ReLU gain); BN already 1/0.
    std::function<void(const std::shared_ptr<nn::Module>&)> visit = [&](const std::shared_ptr<nn::Module>& m) {
        if (auto c = std::dynamic_pointer_cast<nn::Conv2d>(m)) {
            nn::kaiming_normal_(c->weight, nn::fan_out(c->weight), g);
            convs_.push_back(c);
        }
        if (auto b = std::dynamic_pointer_cast<nn::BatchNorm2d>(m)) bns_.push_back(b);
        for (auto& [n, child] : m->named_children()) visit(child);
    };
    for (auto& [n, child] : named_children()) visit(child);
}

Tensor ResNet::features(const Tensor& x) {
    HPT_CHECK(x.dim() == 4 && x.size(1) == cfg_.in_channels, cfg_.str(), ": expects images [N, ", cfg_.in_channels,
              ", H, W], got ", shape_str(x.shape()));
    Tensor h = bn1_->forward_relu(conv1_->forward(x));
    if (!cfg_.small_stem) {
        Pool2dAttrs p;
        p.kernel[0] = p.kernel[1] = 3;
        p.stride[0] = p.stride[1] = 2;
        p.padding[0] = p.padding[1] = 1;
        h = max_pool2d(h, p);
    }
    for (auto& l : layers_) h = l->forward(h);
    return adaptive_avg_pool2d(h, 1, 1).flatten(1);
}

Tensor ResNet::forward(const Tensor& x) {
    const Tensor f = features(x);
    return fc_ ? fc_->forward(f) : f;
}

void ResNet::set_bn_groups(int64_t groups) {
    HPT_CHECK(groups >= 1, "ResNet::set_bn_groups(", groups, ")");
    for (auto& b : bns_) b->groups = groups;
}

void ResNet::reset_head(Generator& g) {
    HPT_CHECK(fc_, cfg_.str(), ": reset_head on a ResNet without a head");
    NoGradGuard ng;
    for (auto& [name, t] : fc_->named_parameters()) {
        if (t.dim() == 2) {
            nn::kaiming_normal_(t, nn::fan_in(t), g);
        } else {
            t.zero_();
        }
    }
}

}  // namespace hpt::models
