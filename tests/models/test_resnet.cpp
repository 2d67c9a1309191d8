// ResNets: torchvision's structure, names and parameter counts, and a torchvision ResNet-18 forward
// golden (tools/golden_resnet.py) matched in eval and in train mode after loading safetensors.
#include <cstdint>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "engine/autograd/grad_mode.h"
#include "engine/io/json.h"
#include "engine/io/safetensors.h"
#include "engine/ops/ops.h"
#include "models/resnet.h"
#include "tests/support/compare.h"
#include "tests/support/devices.h"
#include "tests/support/golden.h"

using namespace hpt;

namespace {
models::ResNetConfig tv(int depth) {
    models::ResNetConfig c;
    c.depth = depth;
    c.head = models::Head::classifier;
    c.num_classes = 1000;
    return c;
}
}  // namespace

TEST_CASE("ResNet-18/34/50 have torchvision's parameter counts", "[models]") {
    Generator g(1);
    // torchvision: sum(p.numel() for p in resnetN().parameters())
    CHECK(models::ResNet(tv(18), g).num_parameters() == 11689512);
    CHECK(models::ResNet(tv(34), g).num_parameters() == 21797672);
    CHECK(models::ResNet(tv(50), g).num_parameters() == 25557032);
    models::ResNetConfig moco = tv(18);
    moco.head = models::Head::mlp;
    moco.small_stem = true;
    models::ResNet m(moco, g);
    CHECK(m.feature_dim() == 512);
    // small stem: 3x3 conv, 64*3*9 instead of 64*3*49; fc: 512*512+512 + 512*128+128
    CHECK(m.num_parameters() == 11689512 - 64 * 3 * 49 + 64 * 3 * 9 - (512 * 1000 + 1000) + (512 * 512 + 512) +
                                    (512 * 128 + 128));
}

TEST_CASE("width multiplier, input channels and the small stem change the shapes", "[models]") {
    Generator g(2);
    models::ResNetConfig c;
    c.depth = 18;
    c.small_stem = true;
    c.width = 0.25;
    c.in_channels = 1;
    c.head = models::Head::mlp;
    c.proj_dim = 32;
    models::ResNet m(c, g);
    CHECK(m.feature_dim() == 128);
    NoGradGuard ng;
    Tensor y = m(g.randn({2, 1, 28, 28}));
    CHECK(y.shape() == Shape{2, 32});
    CHECK(m.features(g.randn({2, 1, 28, 28})).shape() == Shape{2, 128});
    CHECK_THROWS_WITH(m(g.randn({2, 3, 28, 28})), Catch::Contains("expects images [N, 1, H, W]"));
    std::vector<std::string> names;
    for (auto& [n, t] : m.named_parameters()) names.push_back(n);
    CHECK(names.front() == "conv1.weight");
    CHECK(std::find(names.begin(), names.end(), "layer2.0.downsample.0.weight") != names.end());
    CHECK(std::find(names.begin(), names.end(), "fc.2.bias") != names.end());
}

HPT_DEVICE_TEST("a torchvision ResNet-18 checkpoint loads by name and matches PyTorch's forward", "[models][golden]") {
    const io::Safetensors golden = test::load_golden("resnet18_forward.safetensors");
    const io::Json table = io::Json::parse(golden.metadata.at("tensors"), "golden metadata");
    const uint64_t seed = uint64_t(std::stoll(golden.metadata.at("seed")));

    // Regenerate the state dict the script built, and check it is bit-identical.
    std::vector<std::pair<std::string, Tensor>> sd;
    for (const io::Json& e : table.as_array()) {
        const std::string name = e.at("name").as_string();
        Shape shape;
        for (const io::Json& d : e.at("shape").as_array()) shape.push_back(d.as_int());
        Tensor t = e.at("dtype").as_string() == "int64"
                       ? zeros(shape, DType::i64)
                       : test::seeded_uniform(shape, seed, uint64_t(e.at("stream").as_int()), e.at("lo").as_double(),
                                              e.at("hi").as_double());
        INFO(name);
        REQUIRE(test::crc32_of(t) == uint32_t(e.at("crc32").as_int()));
        sd.emplace_back(name, t);
    }
    const std::string path = (std::filesystem::temp_directory_path() / "hpt_resnet18_golden.safetensors").string();
    io::save_safetensors(path, sd);

    Generator g(3);
    models::ResNet m(tv(18), g);
    // Our state dict has torchvision's names, in torchvision's order.
    const auto ours = io::state_dict(m);
    REQUIRE(ours.size() == sd.size());
    for (size_t i = 0; i < sd.size(); ++i) CHECK(ours[i].first == sd[i].first);
    const io::LoadReport r = io::load_state_dict(m, io::load_safetensors(path));
    CHECK(r.loaded.size() == sd.size());
    std::filesystem::remove(path);

    // The Python-written tensors read back bit for bit.
    CHECK(test::crc32_of(test::golden_tensor(golden, "python_written.fc.bias")) == test::crc32_of(m.named_state()[121].second));

    // On a GPU (cuDNN, our CUDA batchnorm) the same golden, the same bounds widened 4x: cuDNN may
    // sum a convolution in another order (FFT, Winograd) than a direct f32 loop does.
    const double k = dev.is_cuda() ? 4.0 : 1.0;
    if (dev.is_cuda()) m.flatten(dev);
    const Tensor x = test::golden_tensor(golden, "input").to(dev);
    NoGradGuard ng;
    // Judged against the float64 forward (the exact answer), and PyTorch's float32 forward must
    // pass the same bound: the bound is what float32 can do here, not slack for us. Eval mode is
    // the harder case: the golden's running statistics do not match the activations, so nothing is
    // normalised and rounding grows through the blocks (PyTorch-f32 is 1.4e-4 off in eval, 1.9e-5 in
    // train; we measured 1.5e-4 and 2.1e-5).
    for (const std::string mode : {"eval", "train"}) {
        m.train(mode == "train");
        const Tensor exact = test::golden_tensor(golden, "output_" + mode + "_f64");
        const double kt = k * (mode == "eval" ? 1024 : 256);
        const test::Tolerance t = test::tol(DType::f32, kt, kt);
        INFO(mode);
        HPT_CHECK_CLOSE(m(x), exact, t);
        HPT_CHECK_CLOSE(test::golden_tensor(golden, "output_" + mode), exact, t);
    }
    for (const char* bn : {"bn1", "layer4.1.bn2"}) {
        for (const char* stat : {"running_mean", "running_var"}) {
            const std::string key = std::string(bn) + "." + stat;
            Tensor ours_t;
            for (auto& [n, t] : m.named_state())
                if (n == key) ours_t = t;
            INFO(key);
            HPT_CHECK_CLOSE(ours_t, test::golden_tensor(golden, "after_train." + key), test::tol(DType::f32, 64 * k, 64 * k));
        }
    }
}

TEST_CASE("initialisation follows torchvision, and reset_head follows DESIGN.md", "[models][init]") {
    auto stats = [](const Tensor& t) {
        const std::vector<double> v = t.to_vector<double>();
        double s = 0, s2 = 0;
        for (double x : v) s += x, s2 += x * x;
        const double m = s / double(v.size());
        return std::make_pair(m, std::sqrt(s2 / double(v.size()) - m * m));
    };
    models::ResNetConfig c = tv(50);
    c.head = models::Head::mlp;
    Generator g(17);
    models::ResNet m(c, g);
    int convs = 0;
    for (auto& [name, t] : m.named_parameters()) {
        INFO(name);
        if (t.dim() == 4 && t.numel() >= 16384) {  // convs big enough for a 2% bound on the sample std
            // Kaiming normal, fan_out, ReLU gain: std = sqrt(2 / (out_channels * kh * kw)).
            const auto [mean, sd] = stats(t);
            const double want = std::sqrt(2.0 / double(t.size(0) * t.size(2) * t.size(3)));
            CHECK(std::fabs(mean) < 0.02 * want);
            CHECK(sd == Approx(want).epsilon(0.02));
            ++convs;
        } else if (name.find("bn") != std::string::npos || name.find("downsample.1") != std::string::npos) {
            const std::vector<double> v = t.to_vector<double>();
            const double want = name.size() > 7 && name.substr(name.size() - 7) == ".weight" ? 1.0 : 0.0;
            CHECK(std::all_of(v.begin(), v.end(), [&](double x) { return x == want; }));
        }
    }
    CHECK(convs >= 50);
    m.reset_head(g);
    for (auto& [name, t] : m.head()->named_parameters()) {
        INFO(name);
        if (t.dim() == 2) {  // Kaiming normal, fan_in, ReLU gain: std = sqrt(2 / in_features)
            const auto [mean, sd] = stats(t);
            CHECK(sd == Approx(std::sqrt(2.0 / double(t.size(1)))).epsilon(0.02));
        } else {
            CHECK(t.to_vector<double>() == std::vector<double>(size_t(t.numel()), 0.0));
        }
    }
}

TEST_CASE("a checkpoint that does not fit lists every offending tensor", "[models][checkpoint]") {
    Generator g(4);
    models::ResNetConfig small;
    small.depth = 18;
    small.width = 0.25;
    small.small_stem = true;
    small.head = models::Head::mlp;
    models::ResNet a(small, g);
    const std::string path = (std::filesystem::temp_directory_path() / "hpt_mismatch.safetensors").string();
    auto sd = io::state_dict(a);
    sd.erase(sd.begin() + 1);                                // drop bn1.weight
    sd.emplace_back("extra.weight", zeros({3}));             // add an unknown tensor
    sd[0].second = zeros({16, 1, 3, 3});                     // conv1.weight with 1 input channel
    io::save_safetensors(path, sd);
    models::ResNet b(small, g);
    try {
        io::load_state_dict(b, io::load_safetensors(path));
        FAIL("no error");
    } catch (const Error& e) {
        const std::string m = e.what();
        CHECK_THAT(m, Catch::Contains("3 tensors"));
        CHECK_THAT(m, Catch::Contains("missing 'bn1.weight'"));
        CHECK_THAT(m, Catch::Contains("unexpected 'extra.weight'"));
        CHECK_THAT(m, Catch::Contains("'conv1.weight': file has [16, 1, 3, 3], model has [16, 3, 3, 3]"));
    }
    std::filesystem::remove(path);
}
