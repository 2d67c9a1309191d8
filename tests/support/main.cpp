// Test runner. With HPT_TEST_DEVICE=cuda (set by ctest on the cuda entries) and no GPU visible,
// it prints why and exits with 77, which ctest reports as "Skipped" rather than passed.
#define CATCH_CONFIG_RUNNER
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <iostream>

#include "engine/core/device.h"
#include "tests/support/compare.h"

// After each test case that compared values under the tolerance model: how close its closest
// comparison came to the bound ("bound: 37.2% (q.grad()) over 3 checks").
struct ClosestCheckReporter : Catch::TestEventListenerBase {
    using TestEventListenerBase::TestEventListenerBase;
    void testCaseStarting(const Catch::TestCaseInfo& info) override {
        hpt::test::closest_check() = {};
        TestEventListenerBase::testCaseStarting(info);
    }
    void testCaseEnded(const Catch::TestCaseStats& stats) override {
        const hpt::test::ClosestCheck& c = hpt::test::closest_check();
        if (c.checks > 0) {
            stream.precision(3);
            stream << "bound: " << std::fixed << 100.0 * c.worst_fraction << "% (" << c.what << ") over " << c.checks
                   << " checks: " << stats.testInfo.name << "\n";
            stream.unsetf(std::ios::fixed);
        }
        TestEventListenerBase::testCaseEnded(stats);
    }
};
CATCH_REGISTER_LISTENER(ClosestCheckReporter)

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
