#include "tests/support/compare.h"

#include <cstdint>
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <sstream>

#include "engine/autograd/grad_mode.h"

namespace hpt::test {

double dtype_eps(DType t) {
    switch (t) {
        case DType::f32: return double(FLT_EPSILON);
        case DType::f64: return DBL_EPSILON;
        case DType::bf16: return 1.0 / 128.0;
        default: return 0.0;
    }
}

Tolerance tol(DType t, double k_abs, double k_rel) { return {k_abs * dtype_eps(t), k_rel * dtype_eps(t)}; }

Tolerance tol_of_max(const Tensor& reference, double k) {
    double m = 1e-30;
    for (double x : reference.to_vector<double>()) m = std::max(m, std::fabs(x));
    return {k * double(FLT_EPSILON) * m, k * double(FLT_EPSILON)};
}

ClosestCheck& closest_check() {
    static ClosestCheck c;
    return c;
}

Comparison compare(const Tensor& actual, const Tensor& reference, Tolerance t, const std::string& what) {
    NoGradGuard ng;
    Comparison c;
    std::ostringstream os;
    os << "compare " << what << ": ";
    if (actual.shape() != reference.shape()) {
        c.ok = false;
        os << "shape " << shape_str(actual.shape()) << " vs reference " << shape_str(reference.shape());
        c.report = os.str();
        return c;
    }
    const std::vector<double> a = actual.to_vector<double>(), r = reference.to_vector<double>();
    std::ostringstream bad;
    for (size_t i = 0; i < a.size(); ++i) {
        double frac;
        if (!std::isfinite(r[i])) {
            frac = (std::isnan(r[i]) ? std::isnan(a[i]) : a[i] == r[i]) ? 0.0 : INFINITY;
        } else {
            const double err = std::fabs(a[i] - r[i]);
            c.max_abs_err = std::max(c.max_abs_err, std::isnan(err) ? INFINITY : err);
            const double bound = t.atol + t.rtol * std::fabs(r[i]);
            frac = std::isnan(err) ? INFINITY : (bound > 0 ? err / bound : (err == 0 ? 0.0 : INFINITY));
        }
        if (c.worst_index < 0 || frac > c.worst_fraction) {
            c.worst_fraction = frac;
            c.worst_index = int64_t(i);
        }
        if (frac > 1.0) {
            if (c.n_bad < 5) bad << "\n  [" << i << "] actual " << a[i] << " reference " << r[i];
            ++c.n_bad;
        }
    }
    c.ok = c.n_bad == 0;
    ClosestCheck& cc = closest_check();
    ++cc.checks;
    if (c.worst_fraction >= cc.worst_fraction) {
        cc.worst_fraction = c.worst_fraction;
        cc.what = what;
    }
    os.precision(3);
    os << a.size() << " values, atol " << t.atol << " rtol " << t.rtol << ": worst uses "
       << 100.0 * c.worst_fraction << "% of its bound (index " << c.worst_index << "), max abs err "
       << c.max_abs_err;
    if (!c.ok) os << "; " << c.n_bad << " outside the bound:" << bad.str();
    c.report = os.str();
    return c;
}

}  // namespace hpt::test
