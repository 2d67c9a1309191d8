// The tolerance model every numerical test uses.
//
// An element passes when |actual - reference| <= atol + rtol * |reference|. Tolerances are written
// as multiples of the compared dtype's machine epsilon (tol(dtype, k_abs, k_rel)), so the same test
// bounds a f32 and a f64 run sensibly. Every comparison reports its worst element as a fraction
// of its bound ("uses 37% of the bound"): a check that passes at 95% is one to look at.
// NaN or inf in the reference must be matched exactly by the actual value.
#pragma once
#include <cstdint>
#include <string>

#include "engine/core/tensor.h"

namespace hpt::test {

struct Tolerance {
    double atol, rtol;
};

double dtype_eps(DType t);
// atol = k_abs * eps, rtol = k_rel * eps of dtype t.
Tolerance tol(DType t, double k_abs, double k_rel);
// f32 bounds scaled to the reference's largest magnitude: atol = k * eps * max|ref|, rtol = k * eps.
// For tensors whose values differ by decades between tensors (gradients of different layers), each
// judged against its own scale.
Tolerance tol_of_max(const Tensor& reference, double k);

struct Comparison {
    bool ok = true;
    double worst_fraction = 0.0;  // max over elements of |a - r| / bound
    int64_t worst_index = -1;
    int64_t n_bad = 0;
    double max_abs_err = 0.0;
    std::string report;  // a one-paragraph summary with the first mismatches
};

// Compares values (both are copied to the CPU and converted to double); shapes must match.
Comparison compare(const Tensor& actual, const Tensor& reference, Tolerance t, const std::string& what = "");

// The closest any comparison of the running test case came to its bound. The test runner prints
// it after every test case that compared values (tests/support/main.cpp), passing or not, so a
// check that passes at 95% of its bound shows up in the log.
struct ClosestCheck {
    int64_t checks = 0;
    double worst_fraction = 0.0;
    std::string what;
};
ClosestCheck& closest_check();

}  // namespace hpt::test

// Catch2 helper: records the report, fails on mismatch.
#define HPT_CHECK_CLOSE(actual, reference, tolerance)                                           \
    do {                                                                                        \
        const auto hpt_cmp_ = ::hpt::test::compare((actual), (reference), (tolerance), #actual); \
        INFO(hpt_cmp_.report);                                                                  \
        CHECK(hpt_cmp_.ok);                                                                     \
    } while (0)
