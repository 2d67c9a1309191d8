#include "engine/optim/schedule.h"

#include <cstdint>
#include <algorithm>
#include <cmath>

namespace hpt::optim {

double cosine_lr(double base, int64_t step, int64_t total) {
    if (total <= 0) return base;
    const double t = double(std::clamp<int64_t>(step, 0, total)) / double(total);
    return base * 0.5 * (1.0 + std::cos(M_PI * t));
}

}  // namespace hpt::optim
