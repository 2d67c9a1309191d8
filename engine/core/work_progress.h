// Progress of long work that is not a training step: feature extraction, the linear probe,
// decoding a folder of images.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace hpt {

std::string format_duration(double seconds);  // "2m31s", "1h04m", "45s"

// Nothing for its first 2 seconds (short work stays quiet), then "extracting features: 5120/24000 images
// 410/s  ETA 46s", rewritten in place on a terminal at most once a second, or a line every 15 s
// otherwise, and a closing line with the time taken.
class WorkProgress {
public:
    WorkProgress(std::string what, int64_t total, std::string unit);
    void add(int64_t n);
    void set(int64_t done);  // done so far, for work counted elsewhere (by several threads)
    void finish();

private:
    void show(bool last);
    std::string what_, unit_;
    int64_t total_, done_ = 0;
    bool tty_, shown_ = false;
    std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace hpt
