// A whole ResNet-18 training step on the GPU against the same step on the CPU (the specification):
// the loss, the gradient of every parameter, the parameters after SGD, BN running statistics, and
// the loss of a second step taken from the updated weights. Both models start from the same seed,
// so they hold bitwise-equal weights before the step; what differs is cuDNN/cuBLAS/our CUDA kernels
// against the CPU kernels, in f32 with TF32 off.
#include <cstdint>
#include <catch2/catch.hpp>


#include "engine/autograd/grad_mode.h"
#include "engine/ops/ops.h"
#include "engine/optim/sgd.h"
#include "models/resnet.h"
#include "tests/support/compare.h"
#include "tests/support/cuda_switches.h"
#include "tests/support/devices.h"

using namespace hpt;

namespace {

struct Net {
    Generator gen{31};
    models::ResNet model;
    optim::SGD opt;
    Net(const models::ResNetConfig& c, Device dev) : model(c, gen), opt(place(dev), {0.1, 0.9, 1e-4}) {}
    nn::Module& place(Device dev) {
        model.flatten(dev);
        model.set_bn_groups(2);  // ghost BN, as MoCo trains it
        return model;
    }
};

}  // namespace

TEST_CASE("a ResNet-18 training step on the GPU gives the CPU's loss, gradients and update [cuda]", "[ssl][step][cuda]") {
    HPT_NEED_GPU();
    const test::Tf32Scope fp32(false);  // the CPU has no TF32: both sides in f32 whatever HPT_CUDA_TF32 says
    models::ResNetConfig c;
    c.depth = 18;
    c.small_stem = true;
    c.head = models::Head::classifier;
    c.num_classes = 10;
    Net cpu(c, Device::cpu()), gpu(c, Device::cuda(0));
    REQUIRE(cpu.model.num_parameters() == gpu.model.num_parameters());
    {
        const std::vector<float> a = cpu.model.flat_params().to_vector<float>(), b = gpu.model.flat_params().to_vector<float>();
        REQUIRE(a == b);  // same seed, same weights: any later difference is the backends'
    }

    Generator data(77);
    const Tensor x = data.randn({16, 3, 32, 32});  // the small-image setting: 32x32, 3x3 stem
    std::vector<int64_t> labels(16);
    for (int64_t i = 0; i < 16; ++i) labels[size_t(i)] = data.next_below(10);
    const Tensor y = from_vector<int64_t>(labels);

    for (int step = 0; step < 2; ++step) {
        INFO("step " << step);
        cpu.model.zero_grad();
        gpu.model.zero_grad();
        const Tensor lc = cross_entropy(cpu.model(x), y);
        const Tensor lg = cross_entropy(gpu.model(x.to(Device::cuda(0))), y.to(Device::cuda(0)));
        lc.backward();
        lg.backward();
        HPT_CHECK_CLOSE(lg.reshape({1}), lc.reshape({1}), test::tol(DType::f32, 256, 256));

        const auto pc = cpu.model.named_parameters(), pg = gpu.model.named_parameters();
        REQUIRE(pc.size() == pg.size());
        for (size_t i = 0; i < pc.size(); ++i) {
            INFO("gradient of " << pc[i].first);
            REQUIRE(pc[i].first == pg[i].first);
            HPT_CHECK_CLOSE(pg[i].second.grad(), pc[i].second.grad(), test::tol_of_max(pc[i].second.grad(), 2048));
        }
        cpu.opt.step(0.1);
        gpu.opt.step(0.1);
        HPT_CHECK_CLOSE(gpu.model.flat_params(), cpu.model.flat_params(), test::tol(DType::f32, 256, 256));
        const auto bc = cpu.model.named_buffers(), bg = gpu.model.named_buffers();
        for (size_t i = 0; i < bc.size(); ++i) {
            INFO("buffer " << bc[i].first);
            if (bc[i].second.dtype() == DType::i64) {
                CHECK(bg[i].second.cpu().to_vector<int64_t>() == bc[i].second.to_vector<int64_t>());
            } else {
                HPT_CHECK_CLOSE(bg[i].second, bc[i].second, test::tol_of_max(bc[i].second, 512));
            }
        }
    }
}
