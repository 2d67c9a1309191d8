#include "hpt/eval.h"

#include <cstdint>
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/autograd/grad_mode.h"
#include "engine/nn/layers.h"
#include "engine/ops/ops.h"
#include "engine/optim/schedule.h"
#include "engine/optim/sgd.h"

namespace hpt::pipeline {

Tensor features_of(models::ResNet& model, const data::ImageSet& set, const std::vector<int64_t>& rows,
                   const data::InputSpec& spec, Device device, WorkProgress* progress) {
    NoGradGuard ng;
    const int64_t n = int64_t(rows.size()), chunk = 256;
    Tensor out = empty({n, model.feature_dim()});
    Tensor images = set.images;
    if (rows.size() != size_t(set.size())) images = index_select(set.images, 0, from_vector<int64_t>(rows));
    for (int64_t b = 0; b < n; b += chunk) {
        const int64_t e = std::min(n, b + chunk);
        const Tensor x = data::prepare_images(images, b, e, spec).to(device);
        out.slice(0, b, e).copy_(model.features(x).to(Device::cpu()));
        if (progress) progress->add(e - b);
    }
    return out;
}

std::vector<int64_t> all_rows(int64_t n) {
    std::vector<int64_t> r(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) r[size_t(i)] = i;
    return r;
}

namespace {

double accuracy(const Tensor& logits, const Tensor& y) {
    if (y.numel() == 0) return 0.0;
    return double(sum(eq(argmax(logits, 1), y).to(DType::i64)).item<int64_t>()) / double(y.numel());
}

}  // namespace

std::string why_not_evaluable(const data::Dataset& ds) {
    const std::pair<const char*, const data::ImageSet*> splits[] = {{"train", &ds.train}, {"val", &ds.val}, {"test", &ds.test}};
    for (const auto& [name, set] : splits) {
        if (set->size() == 0) {
            if (set == &ds.val) continue;  // optional: the probe then selects on training accuracy
            return str("its ", name, " split is empty; evaluation needs labeled train and test splits");
        }
        int64_t unlabeled = 0;
        if (!set->labels.defined()) {
            unlabeled = set->size();
        } else {
            for (int64_t y : set->labels.to_vector<int64_t>()) unlabeled += y < 0;
        }
        if (unlabeled > 0)
            return str("its ", name, " split has ", unlabeled, " unlabeled image(s) of ", set->size(),
                       "; evaluation needs every train, val and test image labeled");
    }
    if (ds.train.num_classes < 2) return "its training split has a single class; evaluation needs two or more";
    return "";
}

FeatureSet extract_features(models::ResNet& model, const data::Dataset& ds, const data::InputSpec& spec, Device device,
                            int64_t max_train, uint64_t seed) {
    NoGradGuard ng;
    const bool was_training = model.is_training();
    model.eval();
    FeatureSet f;
    std::vector<int64_t> train_rows = all_rows(ds.train.size());
    if (max_train > 0 && ds.train.size() > max_train) {
        Generator g(seed, 0x50524f4245ull /* "PROBE" */);
        std::vector<int64_t> p = g.permutation(ds.train.size());
        p.resize(size_t(max_train));
        std::sort(p.begin(), p.end());
        train_rows = p;
    }
    WorkProgress progress("extracting features", int64_t(train_rows.size()) + ds.val.size() + ds.test.size(), "images");
    f.train = features_of(model, ds.train, train_rows, spec, device, &progress);
    f.y_train = index_select(ds.train.labels, 0, from_vector<int64_t>(train_rows));
    f.val = features_of(model, ds.val, all_rows(ds.val.size()), spec, device, &progress);
    f.y_val = ds.val.labels;
    f.test = features_of(model, ds.test, all_rows(ds.test.size()), spec, device, &progress);
    progress.finish();
    f.y_test = ds.test.labels;
    f.num_classes = std::max({ds.train.num_classes, ds.val.num_classes, ds.test.num_classes});
    model.train(was_training);
    return f;
}

EvalResult linear_probe(const FeatureSet& f, const EvalSection& cfg, uint64_t seed) {
    HPT_CHECK(f.train.size(0) > 0 && f.num_classes > 1, "linear probe: needs labeled training images of 2+ classes");
    EvalResult r;
    // Standardise with the training features' statistics (scale-free learning rate).
    Tensor mu, sd;
    {
        NoGradGuard ng;
        mu = mean(f.train, {0}, true);
        sd = sqrt(mean(pow(f.train - mu, 2.0), {0}, true) + 1e-6);
    }
    auto standard = [&](const Tensor& x) { return (x - mu) / sd; };
    const Tensor xtr = standard(f.train), xva = standard(f.val), xte = standard(f.test);
    Generator g(seed, 0x4c494e45ull /* "LINE" */);
    nn::Linear head(f.train.size(1), f.num_classes, g);
    {
        NoGradGuard ng;
        g.normal_(head.weight, 0.0, 0.01);  // the paper's init: N(0, 0.01), bias 0
        head.bias.zero_();
    }
    head.flatten();
    optim::SGD opt(head, {cfg.probe_lr, 0.9, cfg.probe_weight_decay});
    const int64_t n = xtr.size(0), batch = std::min<int64_t>(256, n);
    const int64_t steps_per_epoch = std::max<int64_t>(1, n / batch), total = cfg.probe_epochs * steps_per_epoch;
    int64_t step = 0;
    const bool has_val = f.val.size(0) > 0;
    WorkProgress progress("linear probe", cfg.probe_epochs, "epochs");
    for (int64_t epoch = 0; epoch < cfg.probe_epochs; ++epoch) {
        const std::vector<int64_t> perm = g.permutation(n);
        for (int64_t s = 0; s < steps_per_epoch; ++s, ++step) {
            const Tensor idx = from_vector<int64_t>(std::vector<int64_t>(perm.begin() + s * batch, perm.begin() + (s + 1) * batch));
            head.zero_grad();
            cross_entropy(head(index_select(xtr, 0, idx)), index_select(f.y_train, 0, idx)).backward();
            opt.step(optim::cosine_lr(cfg.probe_lr, step, total));
        }
        progress.add(1);
        if (epoch < cfg.probe_epochs / 2 && epoch != cfg.probe_epochs - 1) continue;
        NoGradGuard ng;
        const double val = has_val ? accuracy(head(xva), f.y_val) : accuracy(head(xtr), f.y_train);
        if (val > r.probe_val_acc) {
            r.probe_val_acc = val;
            r.probe_best_epoch = epoch;
            r.probe_test_acc = accuracy(head(xte), f.y_test);
        }
    }
    progress.finish();
    return r;
}

double knn_accuracy(const Tensor& train, const Tensor& y_train, const Tensor& test, const Tensor& y_test,
                    int64_t num_classes, int64_t k, double t) {
    NoGradGuard ng;
    HPT_CHECK(train.size(0) > 0 && k > 0, "kNN: no training features or k = ", k);
    const Tensor a = l2_normalize(train, 1), b = l2_normalize(test, 1);
    const std::vector<int64_t> ytr = y_train.to_vector<int64_t>(), yte = y_test.to_vector<int64_t>();
    const int64_t n = train.size(0), kk = std::min(k, n);
    int64_t correct = 0;
    for (int64_t r0 = 0; r0 < b.size(0); r0 += 256) {
        const int64_t r1 = std::min(b.size(0), r0 + 256);
        const std::vector<float> sim = matmul(b.slice(0, r0, r1), a.t()).to_vector<float>();
        std::vector<int64_t> order(static_cast<size_t>(n));
        std::vector<double> votes(static_cast<size_t>(num_classes));
        for (int64_t i = 0; i < r1 - r0; ++i) {
            const float* s = sim.data() + i * n;
            for (int64_t j = 0; j < n; ++j) order[size_t(j)] = j;
            // Ties broken by index so the result does not depend on the sort's internals.
            auto better = [s](int64_t x, int64_t y) { return s[x] > s[y] || (s[x] == s[y] && x < y); };
            std::nth_element(order.begin(), order.begin() + (kk - 1), order.end(), better);
            std::fill(votes.begin(), votes.end(), 0.0);
            // exp((s - s_max) / t): the same ratios as exp(s / t), which overflowed to inf for a
            // small t (t = 0.001: every neighbour's vote went to class 0).
            double s_max = -INFINITY;
            for (int64_t j = 0; j < kk; ++j) s_max = std::max(s_max, double(s[order[size_t(j)]]));
            for (int64_t j = 0; j < kk; ++j) {
                const int64_t m = order[size_t(j)];
                votes[size_t(ytr[size_t(m)])] += std::exp((double(s[m]) - s_max) / t);
            }
            const int64_t pred = int64_t(std::max_element(votes.begin(), votes.end()) - votes.begin());
            correct += pred == yte[size_t(r0 + i)];
        }
    }
    return b.size(0) ? double(correct) / double(b.size(0)) : 0.0;
}

EvalResult evaluate(const FeatureSet& f, const EvalSection& cfg, uint64_t seed) {
    EvalResult r;
    if (cfg.linear_probe) r = linear_probe(f, cfg, seed);
    if (cfg.knn) {
        r.knn_test_acc = knn_accuracy(f.train, f.y_train, f.test, f.y_test, f.num_classes, cfg.knn_k, cfg.knn_t);
        r.knn_k_used = std::min(cfg.knn_k, f.train.size(0));
    }
    return r;
}

EvalResult evaluate_on(models::ResNet& model, const data::Dataset& ds, const std::string& path, int64_t image_size,
                       const EvalSection& cfg, uint64_t seed, Device device) {
    const std::string why = why_not_evaluable(ds);
    HPT_CHECK(why.empty(), path, ": ", why);
    const auto [mean, std] = data::normalization_mean_std(ds.train);
    const data::InputSpec spec = data::spec_for(mean, std, model.config().in_channels, image_size);
    return evaluate(extract_features(model, ds, spec, device, cfg.max_train, seed), cfg, seed);
}

void put_accuracies(io::Json& into, const EvalResult& r) {
    const auto acc = [](double v) { return v < 0 ? io::Json() : io::Json::number(v); };
    into["probe_test_acc"] = acc(r.probe_test_acc);
    into["probe_val_acc"] = acc(r.probe_val_acc);
    into["knn_test_acc"] = acc(r.knn_test_acc);
}

std::string percent(double acc, const std::string& missing) {
    if (acc < 0) return missing;
    char b[32];
    std::snprintf(b, sizeof b, "%.2f%%", 100 * acc);  // rounded (truncating showed 0.6667 as 66.66%)
    return b;
}

EvalResult get_accuracies(const io::Json& from) {
    const auto acc = [&](const char* k) { return from.at(k).is_null() ? -1.0 : from.at(k).as_double(k); };
    EvalResult r;
    r.probe_test_acc = acc("probe_test_acc");
    r.probe_val_acc = acc("probe_val_acc");
    r.knn_test_acc = acc("knn_test_acc");
    return r;
}

}  // namespace hpt::pipeline
