// One progress line per stage: "[target] step 120/800  loss 6.2341  lr 0.02830  412 img/s  ETA 2m31s".
// On a terminal it is rewritten in place; otherwise a line is printed every `every` steps.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/work_progress.h"

namespace hpt::pipeline {

using hpt::format_duration;
using hpt::WorkProgress;

// The pace of the last `window` steps, for the rate and the ETA. A process's first step pays for
// warm-up (oneDNN primitives, cuDNN's algorithm search, the allocator, the loader's first batches):
// it is the estimate until a second step ends, and then leaves the window. A mean since the start
// would carry it to the end of the stage (at step 10 of 60 the built-in example said "102 img/s
// ETA 1m03s", and the whole example, three stages and their evaluations, took 24.6 s).
class StepClock {
public:
    explicit StepClock(int window = 20);
    void step_ended(double t, int64_t images);  // t: seconds since the clock started
    // Seconds between steps that were no step's work (a monitor evaluation, a checkpoint write):
    // they carried into the next step and, through the window, into the rate of 20 steps (about
    // 6x too low after every monitor).
    void idle(double seconds) { idle_ += seconds; }
    double seconds_per_step() const;            // NaN before the first step ends
    double images_per_second() const;           // 0 before the first step ends

private:
    struct Mark {
        double t;
        int64_t images;  // images done by t
    };
    int window_;
    int64_t steps_ = 0;
    double idle_ = 0;
    std::vector<Mark> marks_;  // oldest first: the window's start, then the end of each step in it
};

class Progress {
public:
    Progress(std::string stage, int64_t total, int64_t every);
    void update(int64_t step_done, double loss, double lr, int64_t images);
    void finish();
    double images_per_second() const { return clock_.images_per_second(); }
    double elapsed() const;  // wall time, monitors and checkpoints included
    // Runs f() outside the step clock: the rate and the ETA are those of the training steps.
    template <class F>
    void off_the_clock(F&& f) {
        const double t0 = elapsed();
        struct Restart {  // also when f throws
            Progress& p;
            double t0;
            ~Restart() { p.clock_.idle(p.elapsed() - t0); }
        } restart{*this, t0};
        f();
    }

private:
    std::string stage_;
    int64_t total_, every_;
    bool tty_;
    std::chrono::steady_clock::time_point start_, last_;
    StepClock clock_;
};


}  // namespace hpt::pipeline
