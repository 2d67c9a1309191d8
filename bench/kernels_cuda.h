// The CUDA part of bench_kernels (bench/kernels_cuda.cpp).
#pragma once
#include <cstdint>
#include <string>

namespace hpt::bench {

class Output;

struct CudaBenchOptions {
    std::string device = "cuda";  // "cuda" or "cuda:N"
    std::string filter = ".*";    // regex over "bench shape"
    int64_t batch = 0;            // 0: 512 for ResNet-18 (32x32), 256 for ResNet-50 (224x224)
    std::string nets = "all";     // resnet18, resnet50 or all
    double min_seconds = 1.0;
    bool peer = true;
};

// conv2d forward and backward (separately), batchnorm2d forward and backward and the GEMMs of
// the networks' layer shapes, timed with CUDA events next to PyTorch on the same GPU, one JSON
// line each through `out`. Returns the process exit code; throws hpt::Error when no CUDA device is usable.
int run_cuda_kernel_benches(const CudaBenchOptions& o, Output& out);

}  // namespace hpt::bench
