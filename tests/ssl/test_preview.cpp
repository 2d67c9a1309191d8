// The PNG grid behind `hpt_run data preview`: written, readable, and of the documented layout.
#include <cstdint>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "ssl/preview.h"
#include "tests/support/datasets.h"

using namespace hpt;

namespace {
uint32_t be32(const unsigned char* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }
}  // namespace

TEST_CASE("write_preview_grid writes a PNG of originals and two views", "[ssl][preview]") {
    const std::string dir = test::find_dataset_dir("retinamnist", "retinamnist.npz");
    if (dir.empty()) {
        WARN("skipped: RetinaMNIST not found");
        return;
    }
    const auto path = std::filesystem::temp_directory_path() / ("hpt_preview_" + std::to_string(::getpid()) + ".png");
    const data::Dataset ds = data::load_dataset(dir + "/retinamnist.npz");
    ssl::write_preview_grid(ds, path.string(), 3, ssl::augment_policy("full", 32), 5);
    std::ifstream f(path, std::ios::binary);
    unsigned char head[24] = {};
    f.read(reinterpret_cast<char*>(head), 24);
    std::filesystem::remove(path);
    CHECK(std::string(reinterpret_cast<char*>(head + 1), 3) == "PNG");
    // Cells of max(28, 32) = 32 pixels magnified 3x (>= 96), three columns, three rows, 4-px gaps.
    CHECK(be32(head + 16) == 3 * 96 + 4 * 4);
    CHECK(be32(head + 20) == 3 * (96 + 4) + 4);
    CHECK_THROWS_WITH(ssl::write_preview_grid(ds, "/nonexistent/dir/x.png", 1,
                                              ssl::augment_policy("full", 32), 5),
                      Catch::Contains("cannot write"));
}
