#include "hpt/progress.h"

#include <cstdint>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <utility>

namespace hpt::pipeline {


StepClock::StepClock(int window) : window_(window < 1 ? 1 : window), marks_{{0.0, 0}} {}

void StepClock::step_ended(double t, int64_t images) {
    marks_.push_back({t - idle_, marks_.back().images + images});
    if (++steps_ == 2) marks_.erase(marks_.begin());  // the warm-up step leaves
    if (int64_t(marks_.size()) > window_ + 1) marks_.erase(marks_.begin());
}

double StepClock::seconds_per_step() const {
    if (marks_.size() < 2) return NAN;
    return (marks_.back().t - marks_.front().t) / double(marks_.size() - 1);
}

double StepClock::images_per_second() const {
    if (marks_.size() < 2) return 0;
    const double dt = marks_.back().t - marks_.front().t;
    return dt > 0 ? double(marks_.back().images - marks_.front().images) / dt : 0;
}

Progress::Progress(std::string stage, int64_t total, int64_t every)
    : stage_(std::move(stage)), total_(total), every_(every), tty_(::isatty(2)) {
    start_ = last_ = std::chrono::steady_clock::now();
}

double Progress::elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t step_done, double loss, double lr, int64_t images) {
    clock_.step_ended(elapsed(), images);
    const bool show = step_done == total_ || (tty_ ? std::chrono::steady_clock::now() - last_ > std::chrono::milliseconds(200)
                                                   : step_done % every_ == 0);
    if (!show) return;
    last_ = std::chrono::steady_clock::now();
    const double eta = clock_.seconds_per_step() * double(total_ - step_done);
    std::fprintf(stderr, "%s[%s] step %lld/%lld  loss %.4f  lr %.4g  %.0f img/s  ETA %s%s", tty_ ? "\r\033[K" : "",
                 stage_.c_str(), static_cast<long long>(step_done), static_cast<long long>(total_), loss, lr,
                 clock_.images_per_second(), format_duration(eta).c_str(), tty_ ? "" : "\n");
    std::fflush(stderr);
}

void Progress::finish() {
    if (tty_) std::fprintf(stderr, "\n");
}

}  // namespace hpt::pipeline
