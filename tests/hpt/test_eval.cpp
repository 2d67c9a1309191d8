// Evaluation on features with a known answer: the linear probe and kNN find separable classes and
// stay near chance on random labels; kNN votes as InstDisc does; the summary table shows results.
#include <cstdint>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <tuple>

#include "engine/core/random.h"
#include "engine/ops/ops.h"
#include "engine/io/safetensors.h"
#include "hpt/checkpoint.h"
#include "hpt/embed.h"
#include "hpt/eval.h"
#include "hpt/pipeline.h"
#include "tests/data/fixtures.h"
#include "tests/hpt/tiny_run.h"

using namespace hpt;
using namespace hpt::pipeline;

namespace {

// `per_class` points of each of `classes` Gaussian clusters in `dim` dimensions, centres `spread`
// apart (unit noise); labels random instead when `shuffle_labels`.
std::pair<Tensor, Tensor> clusters(int64_t classes, int64_t per_class, int64_t dim, double spread, Generator& g,
                                   bool shuffle_labels = false) {
    Generator centres(99);  // the same centres for every split
    const Tensor c = centres.randn({classes, dim}) * spread;
    const int64_t n = classes * per_class;
    std::vector<int64_t> y(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) y[size_t(i)] = i % classes;
    const Tensor x = index_select(c, 0, from_vector<int64_t>(y)) + g.randn({n, dim});
    if (shuffle_labels)
        for (int64_t i = 0; i < n; ++i) y[size_t(i)] = g.next_below(classes);
    return {x, from_vector<int64_t>(y)};
}

FeatureSet feature_set(double spread, bool shuffle_labels) {
    Generator g(5);
    FeatureSet f;
    std::tie(f.train, f.y_train) = clusters(3, 100, 16, spread, g, shuffle_labels);
    std::tie(f.val, f.y_val) = clusters(3, 20, 16, spread, g, shuffle_labels);
    std::tie(f.test, f.y_test) = clusters(3, 40, 16, spread, g, shuffle_labels);
    f.num_classes = 3;
    return f;
}

}  // namespace

TEST_CASE("the linear probe and kNN separate separable classes and not random labels", "[eval]") {
    EvalSection cfg;
    cfg.probe_epochs = 20;
    cfg.knn_k = 20;
    const EvalResult good = evaluate(feature_set(4.0, false), cfg, 1);
    CHECK(good.probe_test_acc > 0.95);
    CHECK(good.probe_val_acc > 0.95);
    CHECK(good.probe_best_epoch >= cfg.probe_epochs / 2);  // chosen in the second half of training
    CHECK(good.knn_test_acc > 0.95);

    const EvalResult chance = evaluate(feature_set(4.0, true), cfg, 1);  // 3 classes: 33%
    CHECK(chance.probe_test_acc < 0.6);
    CHECK(chance.knn_test_acc < 0.6);

    EvalSection knn_only = cfg;
    knn_only.linear_probe = false;
    const EvalResult k = evaluate(feature_set(4.0, false), knn_only, 1);
    CHECK(k.probe_test_acc == -1);  // "not run", which the summary table prints as "-"
    CHECK(k.knn_test_acc == good.knn_test_acc);
}

TEST_CASE("kNN weighs the k nearest by exp(cosine / t)", "[eval]") {
    // Test point along x. Neighbours: one of class 0 at angle 0 (cos 1), two of class 1 at cos 0.8.
    const Tensor train = from_vector<float>({1, 0, 0.8f, 0.6f, 0.8f, -0.6f, -1, 0}, {4, 2});
    const Tensor y_train = from_vector<int64_t>({0, 1, 1, 0}, {4});
    const Tensor test = from_vector<float>({2, 0}, {1, 2});
    const Tensor y0 = from_vector<int64_t>({0}, {1}), y1 = from_vector<int64_t>({1}, {1});
    // k = 1: the nearest alone (class 0).
    CHECK(knn_accuracy(train, y_train, test, y0, 2, 1, 0.1) == 1.0);
    // k = 3, t = 0.1: class 0 has e^10 = 22026, class 1 has 2 e^8 = 5962: class 0 wins.
    CHECK(knn_accuracy(train, y_train, test, y0, 2, 3, 0.1) == 1.0);
    // t = 1: e^1 = 2.72 against 2 e^0.8 = 4.45: class 1 wins; the weights, not the count, decide.
    CHECK(knn_accuracy(train, y_train, test, y1, 2, 3, 1.0) == 1.0);
    CHECK_THROWS_WITH(knn_accuracy(train, y_train, test, y0, 2, 0, 0.1), Catch::Contains("k = 0"));
    // t = 0.001: e^1000 for the nearest (now class 1) against 2 e^800 for class 0. Both overflowed
    // to inf, and the tie went to class 0; relative to the nearest's similarity, class 1 wins.
    const Tensor y_swapped = from_vector<int64_t>({1, 0, 0, 1}, {4});
    CHECK(knn_accuracy(train, y_swapped, test, y1, 2, 3, 0.001) == 1.0);
}

TEST_CASE("the summary table lists every stage's evaluations", "[eval]") {
    RunResult r;
    StageOutcome a;
    a.name = "base";
    a.iterations = 600;
    a.seconds = 75;
    StageEval e;
    e.data = "/usr/share/datasets/fashion-mnist";
    e.result.probe_test_acc = 0.8347;
    e.result.knn_test_acc = 0.7662;
    a.evals.push_back(e);
    StageOutcome b = a;
    b.name = "target";
    b.iterations = 300;
    b.evals[0].result.probe_test_acc = -1;  // not run
    r.stages = {a, b};
    const std::string t = summary_table(r);
    CHECK_THAT(t, Catch::Contains("stage") && Catch::Contains("probe acc") && Catch::Contains("kNN acc"));
    CHECK_THAT(t, Catch::Contains("base") && Catch::Contains("83.47%") && Catch::Contains("76.62%"));
    CHECK_THAT(t, Catch::Contains("target") && Catch::Contains("300"));
    CHECK(std::count(t.begin(), t.end(), '\n') == 3);
    b.evals[0].result.knn_test_acc = 2.0 / 3.0;  // rounded, not truncated to 66.66%
    r.stages = {b};
    CHECK_THAT(summary_table(r), Catch::Contains("66.67%"));
}

TEST_CASE("hpt_run eval's options are checked before any work, as a config's [eval] is", "[eval]") {
    // Its options fill an EvalSection without a config's validation: --probe-epochs -1 printed a
    // linear probe of -100.00%, and --image-size -3 failed deep inside a tensor allocation.
    BackboneRequest r;
    r.checkpoint = "/nonexistent/ckpt.safetensors";
    r.data = "/nonexistent/data";
    CHECK_THROWS_WITH(evaluate_checkpoint(r, {"eval.probe_epochs=-1"}), Catch::Contains("eval.probe_epochs = -1"));
    CHECK_THROWS_WITH(evaluate_checkpoint(r, {"eval.knn_k=0"}), Catch::Contains("eval.knn_k = 0"));
    CHECK_THROWS_WITH(evaluate_checkpoint(r, {"model.width=2"}), Catch::Contains("is not an [eval] setting"));
    r.image_size = -3;
    CHECK_THROWS_WITH(evaluate_checkpoint(r), Catch::Contains("image size -3"));
    CHECK_THROWS_WITH(embed(r), Catch::Contains("image size -3"));
}

TEST_CASE("evaluation needs labeled train and test splits (and val when it has images) of 2+ classes", "[eval]") {
    // Unlabeled images (label -1) reached the kNN vote as an index: heap corruption; an unlabeled
    // test split scored 0% without a word.
    auto set = [](std::vector<int64_t> labels, int64_t classes) {
        data::ImageSet s;
        s.images = zeros({int64_t(labels.size()), 4, 4, 1}, DType::u8);
        s.labels = from_vector<int64_t>(labels);
        s.num_classes = classes;
        return s;
    };
    data::Dataset ds;
    ds.train = set({0, 1, 0, 1}, 2);
    ds.test = set({1, 0}, 2);
    CHECK(why_not_evaluable(ds).empty());
    ds.val = set({0, -1}, 2);
    CHECK_THAT(why_not_evaluable(ds), Catch::Contains("val split has 1 unlabeled image(s) of 2"));
    ds.val = data::ImageSet();
    ds.test = set({-1, -1}, 0);
    CHECK_THAT(why_not_evaluable(ds), Catch::Contains("test split has 2 unlabeled"));
    ds.test = data::ImageSet();
    CHECK_THAT(why_not_evaluable(ds), Catch::Contains("test split is empty"));
    ds.test = set({0, 0}, 1);
    ds.train = set({0, 0, 0}, 1);
    CHECK_THAT(why_not_evaluable(ds), Catch::Contains("single class"));
}

TEST_CASE("a checkpoint holding inf or NaN weights is refused when loaded", "[eval]") {
    // It gave all-NaN features, and accuracies that looked like chance.
    models::ResNetConfig mc;
    mc.width = 0.125;
    mc.small_stem = true;
    Generator g(0);
    models::ResNet m(mc, g);
    std::vector<std::pair<std::string, Tensor>> sd = io::state_dict(m);
    for (auto& [name, t] : sd)
        if (name == "layer1.0.conv1.weight") t = full(t.shape(), NAN, t.dtype());
    const test::TempDir tmp;  // removed with the test (the folders were left in /tmp)
    const std::string path = tmp.file("nan.safetensors");
    io::save_safetensors(path, sd);
    models::ResNet m2(mc, g);
    CHECK_THROWS_WITH(load_backbone(read_checkpoint(path), m2, path),
                      Catch::Contains("nan.safetensors: tensor 'layer1.0.conv1.weight' holds inf or NaN"));
}

TEST_CASE("a checkpoint that does not fit the model names the settings that differ", "[eval]") {
    // A width change listed 100 misshapen tensors and named no setting.
    models::ResNetConfig mc;
    mc.head = models::Head::none;
    mc.width = 0.125;
    mc.small_stem = true;
    mc.in_channels = 1;
    Generator g(0);
    const test::TempDir tmp;
    const std::string path = tmp.file("m.safetensors");
    io::save_safetensors(path, io::state_dict(models::ResNet(mc, g)));
    models::ResNetConfig other = mc;
    other.width = 0.25;
    other.in_channels = 3;
    models::ResNet wide(other, g);
    CHECK_THROWS_WITH(load_backbone(read_checkpoint(path), wide, path),
                      Catch::Contains("set model.in_channels = 1") && Catch::Contains("set model.width = 0.125"));
    other = mc;
    other.depth = 34;
    models::ResNet deep(other, g);
    CHECK_THROWS_WITH(load_backbone(read_checkpoint(path), deep, path), Catch::Contains("It is a ResNet-18: set model.depth = 18"));
}

TEST_CASE("input normalisation needs finite means and finite stds of at least 1e-6", "[eval]") {
    // embed --mean nan or --std 1e-45 wrote all-NaN features; --std inf constant ones.
    CHECK(data::spec_for({0.5}, {0.25}, 1, 8).std == std::vector<double>{0.25});
    CHECK_THROWS_WITH(data::spec_for({NAN}, {0.25}, 1, 8), Catch::Contains("channel 0: mean nan"));
    CHECK_THROWS_WITH(data::spec_for({0.5, 0.5, 0.5}, {0.2, INFINITY, 0.2}, 3, 8), Catch::Contains("channel 1"));
    CHECK_THROWS_WITH(data::spec_for({0.5}, {0.0}, 1, 8), Catch::Contains("std 0"));
    CHECK_THROWS_WITH(data::spec_for({0.5}, {1e-45}, 1, 8), Catch::Contains("at least 1e-6"));
}
