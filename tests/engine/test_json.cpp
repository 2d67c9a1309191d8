// The JSON writer and reader behind metrics, manifests and config.json: numbers come back exactly,
// in their shortest form.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>

#include "engine/io/json.h"

using hpt::io::Json;
using hpt::io::shortest_double;

TEST_CASE("doubles are written in the shortest text that reads back exactly", "[io][json]") {
    // 17 digits gave 0.90000000000000002 in config.json and in the resume warning.
    CHECK(shortest_double(0.9) == "0.9");
    CHECK(shortest_double(0.1) == "0.1");
    CHECK(shortest_double(1.0 / 3.0) == "0.3333333333333333");
    CHECK(std::signbit(Json::parse(Json::number(-0.0).dump()).as_double()));
    CHECK(Json::number(0.999).dump() == "0.999");
    CHECK(Json::number(42.0).dump() == "42");
    std::mt19937_64 rng(7);
    for (int i = 0; i < 20000; ++i) {
        uint64_t bits = rng();
        double d;
        std::memcpy(&d, &bits, sizeof d);
        if (!std::isfinite(d)) continue;
        const std::string text = Json::number(d).dump();
        const double back = Json::parse(text).as_double();
        REQUIRE(std::memcmp(&back, &d, sizeof d) == 0);
    }
}
