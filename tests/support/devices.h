// One test body for every device.
//
// HPT_DEVICE_TEST("name", "[tags]") { ... uses `dev` ... } defines the body once and registers it
// twice: tagged [cpu] with dev = cpu, and tagged [cuda] with dev = cuda:0. The [cuda] run is its
// own ctest entry (label cuda) that reports "skipped" when no GPU is visible (tests/support/main.cpp).
#pragma once
#include <catch2/catch.hpp>

#include "engine/core/device.h"
#include "engine/core/error.h"
#include "engine/ops/registry.h"

namespace hpt::test {
inline bool cuda_available() { return cuda_device_count() > 0; }
}  // namespace hpt::test

// First line of a [cuda]-only TEST_CASE: returns with a visible warning when no GPU is present.
#define HPT_NEED_GPU()                                                                           \
    if (!::hpt::test::cuda_available()) {                                                        \
        WARN("skipped: no CUDA device");                                                         \
        return;                                                                                  \
    }

#define HPT_DEVICE_TEST_IMPL(name, tags, body_fn)                                                \
    static void body_fn(::hpt::Device dev);                                                      \
    TEST_CASE(name " [cpu]", tags "[cpu]") { body_fn(::hpt::Device::cpu()); }                    \
    TEST_CASE(name " [cuda]", tags "[cuda]") {                                                   \
        HPT_NEED_GPU()                                                                           \
        body_fn(::hpt::Device::cuda(0));                                                         \
    }                                                                                            \
    static void body_fn(::hpt::Device dev)

#define HPT_DEVICE_TEST(name, tags) HPT_DEVICE_TEST_IMPL(name, tags, HPT_CONCAT(hpt_device_body_, __LINE__))
