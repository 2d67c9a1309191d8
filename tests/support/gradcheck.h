// Gradient checks: autograd's gradients against central finite differences, in double.
//
// f maps inputs to any tensor y; the check differentiates L = sum(y * w) for a fixed random w, so
// every output element contributes with its own weight. For each element x of each input that
// requires grad, the numeric derivative is (L(x+h) - L(x-h)) / 2h. Kinks (ReLU at 0, max-pool
// ties, clamp bounds) are handled explicitly: where the two one-sided differences disagree the
// function is not differentiable at that point, the element is skipped and counted, and a check
// fails if more than `max_kink_fraction` of the elements are kinks (inputs should avoid them).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/core/tensor.h"
#include "engine/ops/registry.h"

namespace hpt::test {

struct GradcheckOptions {
    double h = 1e-6;
    double atol = 1e-7;
    double rtol = 1e-5;
    double kink_tol = 1e-3;  // relative disagreement of one-sided differences that marks a kink
    double max_kink_fraction = 0.05;
};

struct GradcheckResult {
    bool ok = true;
    int64_t checked = 0;
    int64_t kinks = 0;
    double worst_fraction = 0.0;  // worst |analytic - numeric| / bound over checked elements
    std::string report;
};

using GradFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Inputs must be f64 CPU tensors; those with requires_grad are checked.
GradcheckResult gradcheck(const GradFn& f, const std::vector<Tensor>& inputs, GradcheckOptions opt = {});

// Registry of which ops have a gradient check (filled by HPT_GRADCHECK_CASE).
bool register_gradcheck(const std::string& op);
bool has_gradcheck(const std::string& op);

}  // namespace hpt::test

#define HPT_GRADCHECK_CASE(op)                                                                        \
    static const bool HPT_CONCAT(hpt_gc_reg_, __LINE__) = ::hpt::test::register_gradcheck(#op);     \
    TEST_CASE("gradcheck " #op, "[gradcheck][cpu]")

#define HPT_REQUIRE_GRADCHECK(fn, inputs, ...)                                    \
    do {                                                                          \
        const auto hpt_gc_ = ::hpt::test::gradcheck((fn), (inputs), ##__VA_ARGS__); \
        INFO(hpt_gc_.report);                                                     \
        CHECK(hpt_gc_.ok);                                                        \
    } while (0)
