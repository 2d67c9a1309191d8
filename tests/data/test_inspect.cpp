// The report behind `hpt_run data inspect`, on the real RetinaMNIST file when it is available.
#include <catch2/catch.hpp>

#include "engine/data/inspect.h"
#include "tests/support/datasets.h"

using namespace hpt;

TEST_CASE("inspect_report describes a MedMNIST file", "[data][inspect]") {
    const std::string dir = test::find_dataset_dir("retinamnist", "retinamnist.npz");
    if (dir.empty()) {
        WARN("skipped: RetinaMNIST not found");
        return;
    }
    const std::string r = data::inspect_report(dir + "/retinamnist.npz");
    INFO(r);
    CHECK(r.find("npz (detected)") != std::string::npos);
    CHECK(r.find("train 1080, val 120, test 400") != std::string::npos);
    CHECK(r.find("from the dataset's own split") != std::string::npos);
    CHECK(r.find("28 x 28 x 3 (RGB; height x width x channels)") != std::string::npos);
    CHECK(r.find("classes  5") != std::string::npos);
    CHECK(r.find("486 128 206 194 66") != std::string::npos);  // train counts per grade
    CHECK(r.find("mean      0.3984 0.2447 0.1558") != std::string::npos);
    CHECK_THROWS_AS(data::inspect_report(dir + "/missing.npz"), Error);
}
