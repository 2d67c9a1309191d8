// NCCL at world size 1 on a GPU: the data-parallel path (loss_on_rank, the keys' all-gather and the
// bucketed gradient all-reduce, all through NCCL) must give exactly the plain single-process step.
// (On the CPU the MPI path is checked against one process under mpirun: tests/hpt/test_dist.cpp.)
#include <cstdint>
#include <catch2/catch.hpp>

#include "engine/dist/reducer.h"
#include "engine/ops/ops.h"
#include "engine/optim/sgd.h"
#include "ssl/moco.h"
#include "tests/support/switches.h"
#include "tests/support/devices.h"

using namespace hpt;

#ifdef HPT_WITH_NCCL
namespace {

struct Run {
    ssl::Moco moco;
    optim::SGD opt;
    Run(Generator& g, Device dev)
        : moco(encoder(), config(), g, dev), opt(moco.query(), {0.05, 0.9, 1e-4}) {}
    static models::ResNetConfig encoder() {
        models::ResNetConfig e;
        e.depth = 18;
        e.width = 0.125;
        e.small_stem = true;
        e.in_channels = 3;
        e.head = models::Head::mlp;
        e.proj_dim = 16;
        return e;
    }
    static ssl::MocoConfig config() {
        ssl::MocoConfig c;
        c.queue_size = 32;
        c.bn_groups = 2;
        return c;
    }
};

}  // namespace

TEST_CASE("a MoCo step through NCCL at world size 1 equals the plain step [cuda]", "[ssl][dist][cuda]") {
    HPT_NEED_GPU();
    // Bit-equality of two runs needs cuDNN algorithms without atomics (the default may pick them).
    const test::DeterministicScope deterministic(true);
    const Device dev = Device::cuda(0);
    Generator g1(5), g2(5), data(9);
    Run plain(g1, dev), ranked(g2, dev);
    const std::unique_ptr<dist::Comm> comm = dist::make_nccl_comm(60, dev);
    dist::GradReducer reducer(ranked.moco.query(), *comm, 64 << 10);  // several buckets
    for (int64_t step = 0; step < 3; ++step) {
        const Tensor v1 = data.randn({8, 3, 8, 8}).to(dev), v2 = data.randn({8, 3, 8, 8}).to(dev);
        const auto perm = ssl::Moco::shuffle_permutation(8, 1, step);

        const Tensor l1 = plain.moco.loss(v1, v2, perm);
        plain.moco.query().zero_grad();
        l1.backward();
        plain.opt.step(0.05);
        plain.moco.enqueue();

        const Tensor shuffled = index_select(v2, 0, from_vector<int64_t>(perm, {8}, dev));
        const Tensor l2 = ranked.moco.loss_on_rank(v1, shuffled, perm, *comm);
        ranked.moco.query().zero_grad();
        l2.backward();
        reducer.finish();
        ranked.opt.step(0.05);
        ranked.moco.enqueue();

        INFO("step " << step << " on " << dev.str() << " through " << comm->backend());
        CHECK(l1.item<double>() == l2.item<double>());
    }
    const Tensor a = plain.moco.query().flat_params().to(Device::cpu()), b = ranked.moco.query().flat_params().to(Device::cpu());
    const Tensor qa = plain.moco.queue().to(Device::cpu()), qb = ranked.moco.queue().to(Device::cpu());
    int64_t differ = 0;
    for (int64_t i = 0; i < a.numel(); ++i) differ += a.data<float>()[i] != b.data<float>()[i];
    for (int64_t i = 0; i < qa.numel(); ++i) differ += qa.data<float>()[i] != qb.data<float>()[i];
    CHECK(differ == 0);
    CHECK(reducer.num_buckets() > 1);
}
#endif
