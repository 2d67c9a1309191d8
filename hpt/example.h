// The built-in example (hpt_run with no arguments): Hierarchical PreTraining on data that Debian
// packages provide. A base is pretrained with MoCo on Fashion-MNIST (dataset-fashion-mnist), then
// the target stage runs on scikit-learn's 8x8 handwritten digits (python3-sklearn) from that base
// (HPT) and, with the same budget, from random init (scratch). Base, HPT and scratch backbones are
// linear-probed and kNN-evaluated on the digits; the table shows what the base buys.
#pragma once
#include <cstdint>
#include <string>

namespace hpt::pipeline {

struct ExampleOptions {
    std::string out = "runs/example";
    std::string device = "auto";
    uint64_t seed = 0;
    bool resume = false;
    double budget = 1.0;  // multiplies every iteration count (tests use small values)
};

// Paths of the Debian-packaged datasets; throws with the package to install when absent.
std::string debian_fashion_mnist();
std::string sklearn_digits();

int run_example(const ExampleOptions& o);

}  // namespace hpt::pipeline
