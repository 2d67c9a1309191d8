// One MoCo v2 step against PyTorch (tools/golden_moco_step.py, computed in float64): the loss, every
// gradient of the query encoder, the key encoder after the momentum update and its BN buffers after
// the shuffled key forward, and the queue and pointer after the enqueue. The same body runs on the
// CPU and on a GPU (cuDNN convolutions, our CUDA kernels, the fused InfoNCE): both against the golden.
#include <cstdint>
#include <catch2/catch.hpp>

#include "engine/autograd/grad_mode.h"
#include "engine/io/json.h"
#include "engine/ops/ops.h"
#include "ssl/moco.h"
#include "tests/support/compare.h"
#include "tests/support/devices.h"
#include "tests/support/golden.h"

using namespace hpt;

namespace {

// Fills a module's state from a golden's table of seeded-uniform tensors (bit-checked by CRC).
void fill_from_table(nn::Module& m, const std::string& table_json, uint64_t seed) {
    NoGradGuard ng;
    std::map<std::string, Tensor> mine;
    for (auto& [n, t] : m.named_state()) mine[n] = t;
    const io::Json table = io::Json::parse(table_json, "golden table");
    REQUIRE(table.as_array().size() == mine.size());
    for (const io::Json& e : table.as_array()) {
        const std::string name = e.at("name").as_string();
        INFO(name);
        REQUIRE(mine.count(name) == 1);
        Tensor& dst = mine[name];
        if (e.at("dtype").as_string() == "int64") {
            dst.zero_();
            continue;
        }
        const Tensor v = test::seeded_uniform(dst.shape(), seed, uint64_t(e.at("stream").as_int()), e.at("lo").as_double(),
                                              e.at("hi").as_double());
        REQUIRE(test::crc32_of(v) == uint32_t(e.at("crc32").as_int()));
        dst.copy_(v);
    }
}

}  // namespace

HPT_DEVICE_TEST("one MoCo v2 step matches PyTorch: loss, query gradients, key update, queue", "[ssl][golden]") {
    // On a GPU, cuDNN may pick FFT or Winograd convolutions whose f32 rounding differs from a
    // direct sum; the bounds widen by 8x there (still ~1e-4 of each tensor's largest magnitude).
    const double k = dev.is_cuda() ? 8.0 : 1.0;
    const io::Safetensors g = test::load_golden("moco_step.safetensors");
    const io::Json cfg = io::Json::parse(g.metadata.at("config"), "golden config");
    const uint64_t seed = uint64_t(std::stoll(g.metadata.at("seed")));

    models::ResNetConfig enc;
    enc.depth = int(cfg.at("depth").as_int());
    enc.small_stem = cfg.at("small_stem").as_bool();
    enc.width = cfg.at("width").as_double();
    enc.head = models::Head::mlp;
    enc.proj_dim = cfg.at("proj_dim").as_int();
    ssl::MocoConfig mc;
    mc.queue_size = cfg.at("queue").as_int();
    mc.momentum = cfg.at("momentum").as_double();
    mc.temperature = cfg.at("temperature").as_double();
    mc.bn_groups = cfg.at("bn_groups").as_int();
    Generator init(1);
    ssl::Moco moco(enc, mc, init, dev);
    fill_from_table(moco.query(), g.metadata.at("query_tensors"), seed);
    fill_from_table(moco.key(), g.metadata.at("key_tensors"), seed);
    {
        NoGradGuard ng;
        moco.queue().copy_(test::golden_tensor(g, "queue"));
    }
    moco.set_queue_ptr(cfg.at("ptr").as_int());
    const std::vector<int64_t> perm = test::golden_tensor(g, "perm").to_vector<int64_t>();

    moco.query().zero_grad();
    const Tensor loss = moco.loss(test::golden_tensor(g, "view1").to(dev), test::golden_tensor(g, "view2").to(dev), perm);
    loss.backward();
    HPT_CHECK_CLOSE(loss.reshape({1}), test::golden_tensor(g, "loss"), test::tol(DType::f32, 16 * k, 16 * k));

    int checked = 0;
    for (auto& [name, p] : moco.query().named_parameters()) {
        INFO("gradient of " << name);
        const Tensor& ref = test::golden_tensor(g, "grad." + name);
        HPT_CHECK_CLOSE(p.grad(), ref, test::tol_of_max(ref, 128 * k));
        ++checked;
    }
    CHECK(checked == int(moco.query().named_parameters().size()));
    for (auto& [name, t] : moco.key().named_state()) {
        INFO("key encoder " << name);
        const Tensor& ref = test::golden_tensor(g, "key_after." + name);
        if (t.dtype() == DType::i64) {
            CHECK(t.cpu().to_vector<int64_t>() == ref.to_vector<int64_t>());
        } else {
            HPT_CHECK_CLOSE(t, ref, test::tol_of_max(ref, 64 * k));
        }
    }
    moco.enqueue();
    HPT_CHECK_CLOSE(moco.queue(), test::golden_tensor(g, "queue_after"), test::tol(DType::f32, 64 * k, 64 * k));
    CHECK(moco.queue_ptr() == cfg.at("ptr_after").as_int());
}

TEST_CASE("default BN groups: about 64 images each, dividing the batch, one per rank at least", "[ssl][moco]") {
    models::ResNetConfig e;
    e.width = 0.125;
    e.small_stem = true;
    e.in_channels = 3;
    e.head = models::Head::mlp;
    e.proj_dim = 16;
    ssl::MocoConfig c;
    c.queue_size = 64;
    Generator g(0);
    const ssl::Moco m(e, c, g, Device::cpu());
    CHECK(m.bn_groups_for(256) == 4);
    CHECK(m.bn_groups_for(16) == 1);
    CHECK(m.bn_groups_for(200) == 2);  // batch / 64 = 3 does not divide 200: "not divisible into 3 BN groups"
    CHECK(m.bn_groups_for(64, 2) == 2);
    CHECK(m.bn_groups_for(384, 2) == 6);
    CHECK_THROWS_WITH(m.bn_groups_for(256, 3), Catch::Contains("not divisible into 3 BN groups"));
    c.bn_groups = 8;
    const ssl::Moco eight(e, c, g, Device::cpu());
    CHECK_THROWS_WITH(eight.bn_groups_for(8), Catch::Contains("leave 1 image per group") && Catch::Contains("moco.bn_groups"));
}
