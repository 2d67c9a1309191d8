// The CUDA part of bench_kernels (bench/kernels_cuda.cpp).
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "bench/common.h"

namespace hpt::bench {


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

#ifdef HPT_WITH_CUDA
// fn timed with CUDA events on the current stream: 3 warm-up calls, then at least 10 and until
// min_seconds of GPU time (at most 1000); a deferred device error is raised at the end.
Timing time_cuda(const std::function<void()>& fn, double min_seconds);
#endif

}  // namespace hpt::bench
