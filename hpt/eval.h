// Evaluation of a backbone on a labeled dataset: features extracted once, then
//  * a linear probe: multinomial logistic regression on standardised features, trained with SGD
//    (momentum 0.9, cosine learning rate) for a number of epochs; the reported accuracy is the
//    TEST accuracy at the best VALIDATION accuracy among the evaluations in the second half of
//    training (the paper's rule), computed on features rather than re-augmented images (cheaper;
//    DESIGN.md allows it when documented);
//  * kNN (InstDisc style): cosine similarity, the k nearest training features vote with weight
//    exp(similarity / t).
#pragma once
#include <cstdint>
#include <string>

#include "engine/data/dataset.h"
#include "engine/data/prepare.h"
#include "hpt/config.h"
#include "engine/core/work_progress.h"
#include "models/resnet.h"

namespace hpt::pipeline {

struct FeatureSet {
    Tensor train, val, test;       // f32 [N, C] on the CPU
    Tensor y_train, y_val, y_test; // i64 [N]
    int64_t num_classes = 0;
};

// Why `ds` cannot be evaluated on, or "" when it can: labeled train and test splits (and val, when
// it has images) of two or more classes. Unlabeled images carry label -1, which must never reach
// the probe or the kNN vote: callers check this before extract_features.
std::string why_not_evaluable(const data::Dataset& ds);

// Pooled backbone features (BN in eval mode, no grad). At most `max_train` training images
// (a seeded subset) when max_train > 0.
FeatureSet extract_features(models::ResNet& model, const data::Dataset& ds, const data::InputSpec& spec, Device device,
                            int64_t max_train, uint64_t seed);


// Pooled backbone features of `rows` of a set, in batches of 256 (BN as the model is; no grad).
Tensor features_of(models::ResNet& model, const data::ImageSet& set, const std::vector<int64_t>& rows,
                   const data::InputSpec& spec, Device device, WorkProgress* progress = nullptr);
std::vector<int64_t> all_rows(int64_t n);  // 0, 1, ..., n - 1

struct EvalResult {
    double probe_test_acc = -1, probe_val_acc = -1;  // -1: not run
    int64_t probe_best_epoch = -1;
    double knn_test_acc = -1;
    int64_t knn_k_used = -1;  // eval.knn_k, or the training images when fewer (every one then votes)
};

// The three accuracies as JSON fields (metrics lines, manifests, summary.json): null where not run.
// Reading takes null or a negative number (files written before) as not run.
void put_accuracies(io::Json& into, const EvalResult& r);
EvalResult get_accuracies(const io::Json& from);
// An accuracy as "83.97%" (rounded), or `missing` where it was not run (negative).
std::string percent(double acc, const std::string& missing = "-");

EvalResult linear_probe(const FeatureSet& f, const EvalSection& cfg, uint64_t seed);
double knn_accuracy(const Tensor& train, const Tensor& y_train, const Tensor& test, const Tensor& y_test,
                    int64_t num_classes, int64_t k, double t);

// Both, as the config asks.
EvalResult evaluate(const FeatureSet& f, const EvalSection& cfg, uint64_t seed);

// The backbone's features of `ds` (read from `path`, which errors name), normalised with its training
// images' mean and std at `image_size`, then evaluate().
EvalResult evaluate_on(models::ResNet& model, const data::Dataset& ds, const std::string& path, int64_t image_size,
                       const EvalSection& cfg, uint64_t seed, Device device);

}  // namespace hpt::pipeline
