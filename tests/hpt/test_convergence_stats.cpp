// bench_convergence's arithmetic, which the published speedups rest on: means over seeds, the
// speedup and what it can say (the grid's limit, ties), on hand-made points.
#include <catch2/catch.hpp>

#include "bench/convergence_stats.h"

using hpt::bench::mean_over_seeds;
using hpt::bench::Point;
using hpt::bench::speedup_of;

namespace {
Point pt(const char* mode, int64_t steps, double probe, uint64_t seed = 0) { return {mode, steps, probe, 0.5, 1.0, seed}; }
}  // namespace

TEST_CASE("speedup: steps scratch needs for its best over steps the mode needs to reach it", "[hpt][convergence]") {
    // Unsorted on purpose; scratch's best 0.80 is first reached at 400 (a tie at 1600 picks 400).
    const std::vector<Point> pts = {pt("scratch", 1600, 0.80), pt("hpt", 100, 0.81), pt("scratch", 400, 0.80),
                                    pt("hpt", 25, 0.70), pt("scratch", 100, 0.60), pt("hpt", 400, 0.85)};
    const auto s = speedup_of(pts, "hpt");
    CHECK(s.scratch_best == Approx(0.80));
    CHECK(s.scratch_steps == 400);
    CHECK(s.need == 100);
    CHECK(s.mode_best == Approx(0.85));
    CHECK_FALSE(s.capped);  // 25 steps were tried and fell short
    CHECK(s.margin == Approx(0.01));
    // Reached at the smallest budget: the grid's limit. Exactly equal: a tie, margin 0.
    const auto capped = speedup_of({pt("scratch", 1600, 0.80), pt("hpt", 25, 0.80)}, "hpt");
    CHECK(capped.need == 25);
    CHECK(capped.capped);
    CHECK(capped.margin == 0);
    // Never reached within its budgets.
    const auto none = speedup_of({pt("scratch", 100, 0.9), pt("hpt_bn", 25, 0.8), pt("hpt_bn", 100, 0.85)}, "hpt_bn");
    CHECK(none.need == -1);
    CHECK_FALSE(none.capped);
    // No scratch points: nothing to compare with.
    CHECK(speedup_of({pt("hpt", 25, 0.8)}, "hpt").need == -1);
}

TEST_CASE("means over seeds with sample standard deviations; a missing measurement stays missing", "[hpt][convergence]") {
    std::vector<Point> sd;
    const auto mean = mean_over_seeds({pt("hpt", 25, 0.80, 0), pt("hpt", 25, 0.84, 1), pt("hpt", 25, 0.82, 2),
                                       pt("scratch", 100, 0.70, 0), pt("scratch", 100, -1, 1)},
                                      &sd);
    REQUIRE(mean.size() == 2);
    CHECK(mean[0].mode == "hpt");
    CHECK(mean[0].probe == Approx(0.82));
    CHECK(sd[0].probe == Approx(0.02));  // sample sd of 0.80, 0.84, 0.82
    CHECK(mean[1].probe == -1);          // one seed without a probe: no mean
}
