// Test runner. With HPT_TEST_DEVICE=cuda (set by ctest on the cuda entries) and no GPU visible,
// it prints why and exits with 77, which ctest reports as "Skipped" rather than passed.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <iostream>

#include "engine/core/device.h"

int main(int argc, char** argv) {
    const char* dev = std::getenv("HPT_TEST_DEVICE");
    if (dev && std::strcmp(dev, "cuda") == 0 && hpt::cuda_device_count() == 0) {
#ifdef HPT_WITH_CUDA
        std::cout << "SKIPPED: no CUDA device visible; the [cuda] tests of " << argv[0] << " did not run\n";
#else
        std::cout << "SKIPPED: this build has no CUDA backend; the [cuda] tests of " << argv[0] << " did not run\n";
#endif
        return 77;
    }
    return Catch::Session().run(argc, argv);
}
