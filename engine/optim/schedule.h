// Learning-rate schedules, evaluated per iteration.
#pragma once
#include <cstdint>

namespace hpt::optim {

// base * (1 + cos(pi * step / total)) / 2: from base at step 0 to 0 at step total, no warmup.
double cosine_lr(double base, int64_t step, int64_t total);

}  // namespace hpt::optim
