#include "engine/core/work_progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <utility>

namespace hpt {

std::string format_duration(double s) {
    if (!std::isfinite(s) || s < 0) return "?";
    char buf[32];
    const long t = long(s + 0.5);
    if (t >= 3600) {
        std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    } else if (t >= 60) {
        std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
    } else {
        std::snprintf(buf, sizeof buf, "%lds", t);
    }
    return buf;
}

WorkProgress::WorkProgress(std::string what, int64_t total, std::string unit)
    : what_(std::move(what)), unit_(std::move(unit)), total_(total), tty_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()), last_(start_) {}

void WorkProgress::add(int64_t n) {
    done_ += n;
    const auto now = std::chrono::steady_clock::now();
    if (now - start_ < std::chrono::seconds(2) || now - last_ < std::chrono::seconds(tty_ ? 1 : 15)) return;
    last_ = now;
    show(false);
}

void WorkProgress::set(int64_t done) { add(done - done_); }

void WorkProgress::finish() {
    if (shown_) show(true);
}

void WorkProgress::show(bool last) {
    shown_ = true;
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double rate = t > 0 ? double(done_) / t : 0;
    if (last) {
        std::fprintf(stderr, "%s%s: %lld %s in %s\n", tty_ ? "\r\033[K" : "", what_.c_str(),
                     static_cast<long long>(done_), unit_.c_str(), format_duration(t).c_str());
    } else {
        std::fprintf(stderr, "%s%s: %lld/%lld %s  %.3g/s  ETA %s%s", tty_ ? "\r\033[K" : "", what_.c_str(),
                     static_cast<long long>(done_), static_cast<long long>(total_), unit_.c_str(), rate,
                     format_duration(rate > 0 ? double(total_ - done_) / rate : NAN).c_str(), tty_ ? "" : "\n");
    }
    std::fflush(stderr);
}

}  // namespace hpt
