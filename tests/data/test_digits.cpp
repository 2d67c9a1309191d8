// scikit-learn's digits CSV: the real file when installed, synthetic rows, and malformed ones.
#include <cstdint>
#include <catch2/catch.hpp>

#include <filesystem>

#include "engine/data/dataset.h"
#include "engine/data/digits_csv.h"
#include "tests/data/fixtures.h"

using namespace hpt;
using namespace hpt::data;
using hpt::test::Bytes;
using hpt::test::TempDir;

namespace {
const char* kDigits = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz";

std::string row(int first, int label) {
    std::string s = std::to_string(first);
    for (int i = 1; i < 64; ++i) s += "," + std::to_string(i % 17);
    return s + "," + std::to_string(label) + "\n";
}
}  // namespace

TEST_CASE("real sklearn digits: 1797 images, fixed test carve, seeded val carve", "[data][real]") {
    if (!std::filesystem::exists(kDigits)) {
        FAIL("python3-sklearn's digits.csv.gz not found at " << kDigits << ": install python3-sklearn (tools/install-deps)");
    }
    const Dataset ds = load_dataset(kDigits);
    CHECK(ds.format == "digits_csv");
    CHECK(ds.val_carved);
    CHECK(ds.train.size() + ds.val.size() + ds.test.size() == 1797);
    CHECK(ds.test.size() == 359);   // round(0.2 * 1797)
    CHECK(ds.val.size() == 144);    // round(0.1 * 1438)
    CHECK(ds.train.images.shape() == Shape{1294, 8, 8, 1});
    CHECK(ds.train.num_classes == 10);

    // Everything together, in file order: the first row is a 0 whose pixel 2 is 5 -> 80, pixel 3 is 13 -> 207.
    const std::vector<uint8_t> bytes = test::read_bytes(kDigits);
    const DigitsCsv all = parse_digits_csv(bytes.data(), bytes.size(), kDigits);
    REQUIRE(all.count == 1797);
    CHECK(all.labels[0] == 0);
    CHECK(all.labels[1] == 1);
    CHECK(int(all.pixels[2]) == 80);
    CHECK(int(all.pixels[3]) == 207);
    int64_t per_class[10] = {};
    for (int64_t l : all.labels) ++per_class[l];
    CHECK(per_class[0] == 178);

    // The test split does not move with the seed; val does.
    LoadOptions other;
    other.seed = 7;
    const Dataset ds7 = load_dataset(kDigits, other);
    CHECK(ds7.test.labels.to_vector<int64_t>() == ds.test.labels.to_vector<int64_t>());
    CHECK(ds7.test.images.to_vector<uint8_t>() == ds.test.images.to_vector<uint8_t>());
    CHECK(ds7.val.labels.to_vector<int64_t>() != ds.val.labels.to_vector<int64_t>());
    const Dataset again = load_dataset(kDigits, other);
    CHECK(again.val.images.to_vector<uint8_t>() == ds7.val.images.to_vector<uint8_t>());
}

TEST_CASE("digits CSV: scaling, plain and gzip, malformed rows", "[data]") {
    TempDir tmp;
    std::string text;
    for (int i = 0; i < 20; ++i) text += row(i % 17, i % 10);
    const std::string plain = tmp.write_text("d.csv", text);
    const std::string gz = tmp.write("d.csv.gz", test::gzip_bytes(Bytes(text.begin(), text.end())));
    for (const std::string& p : {plain, gz}) {
        CHECK(detect_format(p) == Format::digits_csv);
        LoadOptions o;
        o.val_fraction = 0;
        const Dataset ds = load_dataset(p, o);
        CHECK(ds.train.size() == 16);
        CHECK(ds.test.size() == 4);
    }
    const Bytes b(text.begin(), text.end());
    const DigitsCsv d = parse_digits_csv(b.data(), b.size(), "d");
    CHECK(int(d.pixels[64 * 16]) == 255);  // row 16 starts with 16
    CHECK(int(d.pixels[64 * 8]) == 128);   // 8 * 255 / 16 = 127.5 rounds up
    CHECK(int(d.pixels[64 * 1]) == 16);    // 15.94
    CHECK(int(d.pixels[1]) == 16);

    auto bad = [&](const std::string& t, const char* why) {
        INFO(t.substr(0, 40) << " -> " << why);
        const Bytes x(t.begin(), t.end());
        CHECK_THROWS_WITH(parse_digits_csv(x.data(), x.size(), "bad.csv"), Catch::Contains("bad.csv") && Catch::Contains(why));
    };
    bad(row(17, 1), "outside 0..16");
    bad(row(0, 1) + "1,2,3\n", "bad.csv:2: only 3 fields");
    bad(row(0, 1).substr(0, 10) + "x\n", "whole numbers");
    bad(row(0, 1).insert(3, "1.5,"), "whole numbers");
    bad("\n\n", "no rows");
}
