#include <catch2/catch.hpp>

#include "engine/ops/ops.h"
#include "tests/support/devices.h"

using namespace hpt;

HPT_DEVICE_TEST("add broadcasts", "[elementwise]") {
    Tensor a = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3}, dev);
    Tensor b = from_vector<float>({10, 20, 30}, {3}, dev);
    CHECK((a + b).to_vector<float>() == std::vector<float>{11, 22, 33, 14, 25, 36});
}
