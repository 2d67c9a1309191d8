// A small CNN (conv-BN-ReLU-pool x2, linear) trained by our tensors and autograd on real
// Fashion-MNIST images: the training loss must fall far below its start and the test accuracy
// must be far above chance (10%).
#include <cstdint>
#include <catch2/catch.hpp>

#include <cmath>
#include <iostream>

#include "engine/autograd/grad_mode.h"
#include "engine/data/dataset.h"
#include "engine/nn/layers.h"
#include "engine/ops/ops.h"
#include "engine/optim/schedule.h"
#include "engine/optim/sgd.h"
#include "tests/support/datasets.h"

using namespace hpt;

namespace {

struct SmallCnn : nn::Layer {
    std::shared_ptr<nn::Sequential> features;
    std::shared_ptr<nn::Linear> fc;
    explicit SmallCnn(Generator& g) {
        features = register_module("features", std::make_shared<nn::Sequential>());
        features->add(std::make_shared<nn::Conv2d>(1, 16, 3, g, 1, 1, false));
        features->add(std::make_shared<nn::BatchNorm2d>(16));
        features->add(std::make_shared<nn::ReLU>());
        features->add(std::make_shared<nn::MaxPool2d>(2, 2));
        features->add(std::make_shared<nn::Conv2d>(16, 32, 3, g, 1, 1, false));
        features->add(std::make_shared<nn::BatchNorm2d>(32));
        features->add(std::make_shared<nn::ReLU>());
        features->add(std::make_shared<nn::MaxPool2d>(2, 2));
        fc = register_module("fc", std::make_shared<nn::Linear>(32 * 7 * 7, 10, g));
    }
    std::string kind() const override { return "SmallCnn"; }
    Tensor forward(const Tensor& x) override { return fc->forward(features->forward(x).flatten(1)); }
};

// u8 NHWC images [lo, hi) -> normalised f32 NCHW.
Tensor batch_of(const data::ImageSet& s, const std::vector<int64_t>& idx, double mean, double std) {
    NoGradGuard ng;
    const Tensor i = from_vector<int64_t>(idx);
    const Tensor x = index_select(s.images, 0, i).permute({0, 3, 1, 2}).to(DType::f32);
    return (x * (1.0 / 255.0) - mean) / std;
}

}  // namespace

TEST_CASE("a conv-BN-ReLU-pool-linear network learns Fashion-MNIST", "[train]") {
    const std::string dir = test::find_dataset_dir("fashion-mnist", "train-images-idx3-ubyte.gz");
    if (dir.empty()) {
        // A dependency that tools/install-deps installs: its absence is a failure, not a pass.
        FAIL("Fashion-MNIST not found: install Debian's dataset-fashion-mnist (tools/install-deps) or set HPT_DATA_DIR");
    }
    const data::Dataset ds = data::load_dataset(dir);
    REQUIRE(ds.train.images.size(0) >= 50000);
    const auto [means, stds] = data::channel_mean_std(ds.train);

    Generator g(2024, 1);
    SmallCnn net(g);
    net.flatten();
    optim::SGD opt(net, {0.02, 0.9, 1e-4});

    const int64_t steps = 300, batch = 64;
    Generator shuffle(2024, 2);
    const std::vector<int64_t> order = shuffle.permutation(ds.train.images.size(0));
    double first = 0, last = 0;
    net.train();
    for (int64_t s = 0; s < steps; ++s) {
        std::vector<int64_t> idx(order.begin() + s * batch, order.begin() + (s + 1) * batch);
        const Tensor x = batch_of(ds.train, idx, means[0], stds[0]);
        const Tensor y = index_select(ds.train.labels, 0, from_vector<int64_t>(idx));
        net.zero_grad();
        const Tensor loss = cross_entropy(net(x), y);
        loss.backward();
        opt.step(optim::cosine_lr(0.02, s, steps));
        const double l = loss.item<double>();
        REQUIRE(std::isfinite(l));
        if (s == 0) first = l;
        if (s >= steps - 50) last += l / 50;
    }

    net.eval();
    NoGradGuard ng;
    int64_t correct = 0;
    const int64_t n_test = 2000;
    for (int64_t b = 0; b < n_test; b += 250) {
        std::vector<int64_t> idx;
        for (int64_t i = b; i < b + 250; ++i) idx.push_back(i);
        const Tensor pred = argmax(net(batch_of(ds.test, idx, means[0], stds[0])), 1);
        const Tensor y = index_select(ds.test.labels, 0, from_vector<int64_t>(idx));
        correct += sum(eq(pred, y).to(DType::i64)).item<int64_t>();
    }
    const double acc = double(correct) / double(n_test);
    std::cout << "small CNN on Fashion-MNIST: loss " << first << " (step 0) -> " << last
              << " (last 50), test accuracy " << acc << " on " << n_test << " images\n";
    CHECK(first > 1.5);          // ~ln(10) = 2.30 at the start
    CHECK(last < 0.35 * first);  // far below the start
    CHECK(acc > 0.75);           // chance is 0.10
}
