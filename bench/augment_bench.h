// The augmentation part of bench_kernels (bench/augment_bench.cpp): the MoCo v2 / HPT policy, two
// views per image, at 32x32 (batch 512) and 224x224 (batch 256), ours next to torchvision's
// equivalent pipeline (tools/peer_augment.py) in the same run.
#pragma once
#include <string>

namespace hpt::bench {

class Output;

struct AugmentBenchOptions {
    std::string device = "cpu";  // cpu, cuda or cuda:N
    std::string filter = ".*";   // regex over "augment_two_views SHAPE"
    std::string policy = "full";
    std::string data;            // RetinaMNIST (npz or folder); empty: ../shared/datasets/retinamnist
    double min_seconds = 1.0;
    bool peer = true;
};

// Whether the filter selects any augmentation row, so callers can skip the input preparation.
bool augment_bench_wanted(const std::string& filter);

// One JSON line per shape through `out`. Returns 0, or 2 when the peer failed (rows then say
// "unavailable"); throws hpt::Error for a bad device, policy or dataset.
int run_augment_benches(const AugmentBenchOptions& o, Output& out);

}  // namespace hpt::bench
