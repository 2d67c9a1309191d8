// SGD over flat buffers and the cosine schedule.
#include <catch2/catch.hpp>

#include <cmath>

#include "engine/autograd/grad_mode.h"
#include "engine/nn/layers.h"
#include "engine/ops/ops.h"
#include "engine/optim/schedule.h"
#include "engine/optim/sgd.h"
#include "tests/support/devices.h"

using namespace hpt;

HPT_DEVICE_TEST("SGD matches PyTorch's momentum and weight-decay update, and skips frozen parameters", "[optim]") {
    Generator g(11);
    nn::Sequential net;
    auto l1 = net.add(std::make_shared<nn::Linear>(4, 3, g));
    auto l2 = net.add(std::make_shared<nn::Linear>(3, 2, g));
    l2->bias.requires_grad_(false);
    net.flatten(dev);
    optim::SGD opt(net, {0.1, 0.9, 0.01});

    // Reference: PyTorch's rule, b = m*b + (g + wd*p); p -= lr*b, in double on the host.
    std::vector<double> p = l1->weight.to_vector<double>(), b(p.size(), 0.0);
    const std::vector<float> frozen = l2->bias.to_vector<float>();
    Tensor x = g.randn({5, 4}, DType::f32, dev);
    for (int step = 0; step < 3; ++step) {
        net.zero_grad();
        sum(net(x)).backward();
        const std::vector<double> grad = l1->weight.grad().to_vector<double>();
        for (size_t i = 0; i < p.size(); ++i) {
            b[i] = 0.9 * b[i] + grad[i] + 0.01 * p[i];
            p[i] -= 0.1 * b[i];
        }
        opt.step(0.1);
        const std::vector<double> got = l1->weight.to_vector<double>();
        for (size_t i = 0; i < p.size(); ++i) CHECK(got[i] == Approx(p[i]).epsilon(1e-5).margin(1e-6));
    }
    CHECK(l2->bias.to_vector<float>() == frozen);
}

TEST_CASE("the cosine schedule runs from the base rate to zero without warmup", "[optim]") {
    CHECK(optim::cosine_lr(0.03, 0, 100) == Approx(0.03));
    CHECK(optim::cosine_lr(0.03, 50, 100) == Approx(0.015));
    CHECK(optim::cosine_lr(0.03, 100, 100) == Approx(0.0).margin(1e-15));
    CHECK(optim::cosine_lr(0.03, 25, 100) == Approx(0.03 * 0.5 * (1 + std::cos(M_PI / 4))));
    // Monotone non-increasing.
    for (int s = 1; s <= 100; ++s) CHECK(optim::cosine_lr(1.0, s, 100) <= optim::cosine_lr(1.0, s - 1, 100));
}
