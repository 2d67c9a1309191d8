#include "tests/support/gradcheck.h"

#include <cstdint>
#include <cmath>
#include <set>
#include <sstream>

#include "engine/autograd/grad_mode.h"
#include "engine/core/random.h"
#include "engine/ops/ops.h"

namespace hpt::test {

namespace {
std::set<std::string>& gradcheck_registry() {
    static std::set<std::string> s;
    return s;
}

double weighted_sum(const Tensor& y, const Tensor& w) {
    return sum(mul(y.to(DType::f64), w)).item<double>();
}
}  // namespace

bool register_gradcheck(const std::string& op) {
    gradcheck_registry().insert(op);
    return true;
}

bool has_gradcheck(const std::string& op) { return gradcheck_registry().count(op) > 0; }

GradcheckResult gradcheck(const GradFn& f, const std::vector<Tensor>& inputs, GradcheckOptions opt) {
    GradcheckResult res;
    std::ostringstream os;
    for (const Tensor& x : inputs) {
        HPT_CHECK(!x.defined() || !x.requires_grad() || (x.dtype() == DType::f64 && x.device().is_cpu()),
                  "gradcheck inputs that require grad must be f64 CPU tensors");
    }
    // Analytic gradients.
    for (const Tensor& x : inputs)
        if (x.defined() && x.requires_grad()) x.set_grad(Tensor());
    Tensor y = f(inputs);
    Generator g(1701, 99);
    const Tensor w = g.randn(y.shape(), DType::f64);
    const Tensor L = sum(mul(y.to(DType::f64), w));
    if (L.requires_grad()) L.backward();  // else no input requires grad: reported below

    NoGradGuard ng;
    int64_t total = 0;
    for (size_t k = 0; k < inputs.size(); ++k) {
        const Tensor& x = inputs[k];
        if (!x.defined() || !x.requires_grad()) continue;
        HPT_CHECK(x.is_contiguous(), "gradcheck inputs must be contiguous");
        const Tensor& ga = x.grad();
        const std::vector<double> analytic =
            ga.defined() ? ga.to_vector<double>() : std::vector<double>(size_t(x.numel()), 0.0);
        double* px = x.data<double>();
        for (int64_t i = 0; i < x.numel(); ++i) {
            const double orig = px[i];
            const double l0 = weighted_sum(f(inputs), w);
            px[i] = orig + opt.h;
            const double lp = weighted_sum(f(inputs), w);
            px[i] = orig - opt.h;
            const double lm = weighted_sum(f(inputs), w);
            px[i] = orig;
            ++total;
            const double fwd = (lp - l0) / opt.h, bwd = (l0 - lm) / opt.h;
            if (std::fabs(fwd - bwd) > opt.kink_tol * std::max({1.0, std::fabs(fwd), std::fabs(bwd)})) {
                ++res.kinks;
                continue;
            }
            const double numeric = (lp - lm) / (2 * opt.h);
            const double a = analytic[size_t(i)];
            const double bound = opt.atol + opt.rtol * std::max(std::fabs(a), std::fabs(numeric));
            const double frac = std::fabs(a - numeric) / bound;
            ++res.checked;
            if (!(frac <= 1.0)) {
                if (res.ok) os << "\n";
                if (res.ok || frac > res.worst_fraction)
                    os << "  input " << k << " element " << i << ": analytic " << a << " numeric " << numeric << "\n";
                res.ok = false;
            }
            res.worst_fraction = std::max(res.worst_fraction, std::isnan(frac) ? INFINITY : frac);
        }
    }
    if (total > 0 && double(res.kinks) > opt.max_kink_fraction * double(total)) {
        res.ok = false;
        os << "\n  " << res.kinks << " of " << total << " elements sit on kinks: choose inputs away from them";
    }
    std::ostringstream head;
    head.precision(3);
    head << "gradcheck: " << res.checked << " elements checked, " << res.kinks << " kinks skipped, worst uses "
         << 100.0 * res.worst_fraction << "% of its bound";
    res.report = head.str() + os.str();
    if (total == 0) {
        res.ok = false;
        res.report += " (no input requires grad)";
    }
    return res;
}

}  // namespace hpt::test
