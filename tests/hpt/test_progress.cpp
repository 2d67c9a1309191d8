// The progress line's pace: recent steps, not a mean since the start that carries the warm-up.
#include <catch2/catch.hpp>
#include <cmath>

#include "hpt/progress.h"

using hpt::pipeline::format_duration;
using hpt::pipeline::StepClock;

TEST_CASE("the ETA's pace leaves out the warm-up step and looks at recent steps only", "[hpt]") {
    StepClock c(4);
    CHECK(std::isnan(c.seconds_per_step()));
    CHECK(c.images_per_second() == 0);
    CHECK(format_duration(c.seconds_per_step() * 10) == "?");
    c.step_ended(10.0, 32);  // a slow first step is the only estimate there is
    CHECK(c.seconds_per_step() == Approx(10.0));
    CHECK(c.images_per_second() == Approx(3.2));
    c.step_ended(11.0, 32);  // then it leaves: one step of 1 s
    CHECK(c.seconds_per_step() == Approx(1.0));
    CHECK(c.images_per_second() == Approx(32.0));
    for (int k = 2; k <= 4; ++k) c.step_ended(10.0 + k, 32);
    CHECK(c.seconds_per_step() == Approx(1.0));  // a mean since the start would say 14 s / 5 = 2.8 s
    // The pace changes (a slower data source, say): after a window of 4 steps only the new one counts.
    for (int k = 1; k <= 4; ++k) c.step_ended(14.0 + 0.5 * k, 64);
    CHECK(c.seconds_per_step() == Approx(0.5));
    CHECK(c.images_per_second() == Approx(128.0));
    c.step_ended(17.0, 64);  // 1 s: the window now holds 0.5, 0.5, 0.5, 1.0
    CHECK(c.seconds_per_step() == Approx(2.5 / 4));
}

TEST_CASE("time between steps spent on a monitor or a checkpoint is not a step's", "[hpt]") {
    StepClock c(4);
    for (int k = 1; k <= 3; ++k) c.step_ended(double(k), 10);
    CHECK(c.images_per_second() == Approx(10.0));
    c.idle(60.0);  // a monitor evaluation of a minute after step 3
    c.step_ended(64.0, 10);
    CHECK(c.seconds_per_step() == Approx(1.0));  // without idle(): (64 - 2) / 2 = 31 s
    CHECK(c.images_per_second() == Approx(10.0));
}
