// bench_convergence's arithmetic: the mean and spread over seeds, and the speedup of a mode (hpt,
// hpt_bn) over scratch, with what the speedup can and cannot say. Points are test accuracies in
// [0, 1]; -1 marks a run without that measurement. Budgets (steps) need not come sorted.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hpt::bench {

struct Point {
    std::string mode;
    int64_t steps;
    double probe, knn, seconds;
    uint64_t seed;
};

// Steps scratch needs for its best probe accuracy, and the steps `mode` needs to reach it (-1:
// never within its budgets), over points of one seed or of means over seeds.
struct Speedup {
    double scratch_best = -1, mode_best = -1;
    int64_t scratch_steps = 0, need = -1;
    // What the number can and cannot say: reached at the mode's smallest budget, it is the grid's
    // limit (fewer steps were not tried, and scratch's best is its best within its budgets only);
    // a margin of 0 is a tie on the test set, not a win.
    bool capped = false;
    double margin = 0;  // the mode's accuracy at `need` minus scratch's best
};

Speedup speedup_of(const std::vector<Point>& points, const std::string& mode);

// One point per (mode, steps): the mean over seeds, and in `sd` the sample standard deviations.
// One run without a measurement (-1) leaves that mean unmeasured.
std::vector<Point> mean_over_seeds(const std::vector<Point>& points, std::vector<Point>* sd);

}  // namespace hpt::bench
