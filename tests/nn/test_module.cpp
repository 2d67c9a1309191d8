// Modules: parameter naming, flat parameter and gradient buffers, trainable ranges, modes.
#include <cstdint>
#include <catch2/catch.hpp>

#include "engine/autograd/grad_mode.h"
#include "engine/nn/layers.h"
#include "engine/ops/ops.h"
#include "tests/support/devices.h"

using namespace hpt;

namespace {
// conv-bn-relu-pool-linear, the shape of the small CNN.
struct SmallNet : nn::Layer {
    std::shared_ptr<nn::Conv2d> conv;
    std::shared_ptr<nn::BatchNorm2d> bn;
    std::shared_ptr<nn::Linear> fc;
    explicit SmallNet(Generator& g) {
        conv = register_module("conv", std::make_shared<nn::Conv2d>(1, 4, 3, g, 1, 1, false));
        bn = register_module("bn", std::make_shared<nn::BatchNorm2d>(4));
        fc = register_module("fc", std::make_shared<nn::Linear>(4 * 4 * 4, 3, g));
    }
    std::string kind() const override { return "SmallNet"; }
    Tensor forward(const Tensor& x) override {
        Pool2dAttrs p;
        return fc->forward(max_pool2d(relu(bn->forward(conv->forward(x))), p).flatten(1));
    }
};
}  // namespace

TEST_CASE("parameters and buffers carry PyTorch's dotted names", "[nn]") {
    Generator g(1);
    SmallNet net(g);
    std::vector<std::string> names;
    for (auto& [n, t] : net.named_parameters()) names.push_back(n);
    CHECK(names == std::vector<std::string>{"conv.weight", "bn.weight", "bn.bias", "fc.weight", "fc.bias"});
    std::vector<std::string> bufs;
    for (auto& [n, t] : net.named_buffers()) bufs.push_back(n);
    CHECK(bufs == std::vector<std::string>{"bn.running_mean", "bn.running_var", "bn.num_batches_tracked"});
    CHECK(net.num_parameters() == 36 + 4 + 4 + 64 * 3 + 3);
}

HPT_DEVICE_TEST("flatten puts every parameter and gradient into one buffer", "[nn]") {
    Generator g(2);
    SmallNet net(g);
    const std::vector<float> w_before = net.fc->weight.to_vector<float>();
    net.flatten(dev);
    const Tensor& P = net.flat_params();
    const Tensor& G = net.flat_grads();
    CHECK(P.device() == dev);
    for (auto& [name, t] : net.named_parameters()) {
        INFO(name);
        CHECK(t.storage() == P.storage());
        CHECK(t.grad().storage() == G.storage());
        CHECK(t.grad().offset() - G.offset() == t.offset() - P.offset());
        CHECK((t.offset() - P.offset()) % 16 == 0);
    }
    CHECK(net.fc->weight.to_vector<float>() == w_before);
    for (auto& [name, b] : net.named_buffers()) CHECK(b.device() == dev);

    // Backward writes into the flat gradient buffer; zero_grad clears it in one go.
    Tensor x = g.randn({2, 1, 8, 8}, DType::f32, dev);
    sum(net(x)).backward();
    const double gnorm = sum(mul(G, G)).item<double>();
    CHECK(gnorm > 0);
    CHECK(sum(mul(net.conv->weight.grad(), net.conv->weight.grad())).item<double>() > 0);
    net.zero_grad();
    CHECK(sum(mul(G, G)).item<double>() == 0.0);
    // Gradients accumulate across backward calls until zero_grad.
    sum(net(x)).backward();
    const std::vector<float> once = G.to_vector<float>();
    sum(net(x)).backward();
    const std::vector<float> twice = G.to_vector<float>();
    for (size_t i = 0; i < once.size(); ++i) CHECK(twice[i] == Approx(2 * once[i]).margin(1e-6));
}

TEST_CASE("trainable ranges skip frozen parameters", "[nn]") {
    Generator g(3);
    SmallNet net(g);
    net.conv->weight.requires_grad_(false);  // HPT-BN freezes convs
    net.flatten();
    const auto ranges = net.trainable_ranges();
    // conv.weight first (frozen), then bn.weight .. fc.bias contiguous apart from padding.
    REQUIRE(ranges.size() == 1);
    CHECK(ranges[0].first == net.bn->weight.offset() - net.flat_params().offset());
    CHECK(ranges[0].second == net.fc->bias.offset() - net.flat_params().offset() + 3);
    Tensor x = g.randn({2, 1, 8, 8});
    sum(net(x)).backward();
    // A frozen parameter's gradient view is never written.
    CHECK(sum(mul(net.conv->weight.grad(), net.conv->weight.grad())).item<double>() == 0.0);
}

TEST_CASE("train and eval switch batchnorm between batch and running statistics", "[nn]") {
    Generator g(4);
    nn::BatchNorm2d bn(2);
    Tensor x = g.randn({4, 2, 3, 3}) * 3.0 + 5.0;
    bn.train();
    Tensor yt = bn(x);
    // Normalised with batch statistics: per-channel mean ~0.
    CHECK(std::fabs(mean(yt.select(1, 0)).item<double>()) < 1e-5);
    CHECK(bn.num_batches_tracked.item<int64_t>() == 1);
    CHECK(bn.running_mean.to_vector<float>()[0] != 0.0f);
    bn.eval();
    const std::vector<float> rm = bn.running_mean.to_vector<float>();
    Tensor ye = bn(x);
    CHECK(bn.running_mean.to_vector<float>() == rm);  // eval leaves the running stats alone
    CHECK(std::fabs(mean(ye.select(1, 0)).item<double>()) > 0.5);
}

TEST_CASE("copy_state_from copies parameters and buffers, and checks structure", "[nn]") {
    Generator g1(5), g2(6);
    SmallNet a(g1), b(g2);
    CHECK(a.fc->weight.to_vector<float>() != b.fc->weight.to_vector<float>());
    b.copy_state_from(a);
    CHECK(a.fc->weight.to_vector<float>() == b.fc->weight.to_vector<float>());
    nn::Linear other(3, 3, g1);
    CHECK_THROWS_WITH(b.copy_state_from(other), Catch::Contains("copy_state_from"));
}
