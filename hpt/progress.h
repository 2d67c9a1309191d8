// One progress line per stage: "[target] step 120/800  loss 6.2341  lr 0.02830  412 img/s  ETA 2m31s".
// On a terminal it is rewritten in place; otherwise a line is printed every `every` steps.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace hpt::pipeline {

std::string format_duration(double seconds);  // "2m31s", "1h04m", "45s"

class Progress {
public:
    Progress(std::string stage, int64_t total, int64_t first_step, int64_t every);
    void update(int64_t step_done, double loss, double lr, int64_t images);
    void finish();
    double images_per_second() const { return rate_; }
    double elapsed() const;

private:
    std::string stage_;
    int64_t total_, first_, every_;
    bool tty_;
    std::chrono::steady_clock::time_point start_, last_;
    int64_t images_ = 0, last_step_ = 0;
    double rate_ = 0;
};

}  // namespace hpt::pipeline
