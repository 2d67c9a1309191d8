#include "engine/nn/init.h"

#include <cstdint>
#include <cmath>

namespace hpt::nn {

namespace {
int64_t receptive(const Tensor& w) {
    int64_t r = 1;
    for (int64_t d = 2; d < w.dim(); ++d) r *= w.size(d);
    return r;
}
}  // namespace

int64_t fan_in(const Tensor& w) { return w.dim() < 2 ? w.numel() : w.size(1) * receptive(w); }
int64_t fan_out(const Tensor& w) { return w.dim() < 2 ? w.numel() : w.size(0) * receptive(w); }

void kaiming_normal_(const Tensor& w, int64_t fan, Generator& g) {
    g.normal_(w, 0.0, std::sqrt(2.0) / std::sqrt(double(fan)));
}

void default_uniform_(const Tensor& t, int64_t fan_in, Generator& g) {
    const double b = fan_in > 0 ? 1.0 / std::sqrt(double(fan_in)) : 0.0;
    g.uniform_(t, -b, b);
}

}  // namespace hpt::nn
