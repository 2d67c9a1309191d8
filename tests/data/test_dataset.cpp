// Format detection, carve-outs, statistics and option checks, independent of any one format.
#include <cstdint>
#include <catch2/catch.hpp>

#include "engine/data/dataset.h"
#include "engine/data/loaders.h"
#include "tests/data/fixtures.h"

using namespace hpt;
using namespace hpt::data;
using hpt::test::Bytes;
using hpt::test::TempDir;

namespace {
ImageSet numbered(int64_t n) {
    std::vector<uint8_t> px(size_t(n) * 2);
    std::vector<int64_t> lab(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        px[size_t(2 * i)] = px[size_t(2 * i + 1)] = uint8_t(i);
        lab[size_t(i)] = i % 4;
    }
    ImageSet s = data::detail::make_set(px.data(), n, 1, 1, 2, lab);
    s.num_classes = 4;
    return s;
}
}  // namespace

TEST_CASE("carve: sizes, determinism, disjoint and order-preserving", "[data]") {
    const ImageSet all = numbered(200);
    const auto [rest, val] = carve(all, 0.1, 42);
    CHECK(rest.size() == 180);
    CHECK(val.size() == 20);
    CHECK(val.num_classes == 4);
    const auto [rest2, val2] = carve(all, 0.1, 42);
    CHECK(val2.images.to_vector<uint8_t>() == val.images.to_vector<uint8_t>());
    const auto [rest3, val3] = carve(all, 0.1, 43);
    CHECK(val3.images.to_vector<uint8_t>() != val.images.to_vector<uint8_t>());
    // Every image lands in exactly one part, each part ascending, labels travel with their image.
    std::vector<int> seen(200, 0);
    for (const ImageSet* s : {&rest, &val}) {
        const std::vector<uint8_t> px = s->images.to_vector<uint8_t>();
        const std::vector<int64_t> lab = s->labels.to_vector<int64_t>();
        for (size_t i = 0; i < lab.size(); ++i) {
            ++seen[px[2 * i]];
            CHECK(lab[i] == px[2 * i] % 4);
            if (i) CHECK(px[2 * i] > px[2 * i - 2]);
        }
    }
    CHECK(std::count(seen.begin(), seen.end(), 1) == 200);
    // A fixed seed gives the same indices on every platform: pin the first few.
    const std::vector<uint8_t> first = val.images.to_vector<uint8_t>();
    CHECK(std::vector<int>{first[0], first[2], first[4]} == std::vector<int>{6, 11, 16});
    CHECK(carve(numbered(1), 0.5, 0).second.size() == 0);  // the rest keeps at least one
    CHECK(carve(numbered(10), 0.0, 0).second.size() == 0);
}

TEST_CASE("channel mean and std in [0, 1] units", "[data]") {
    std::vector<uint8_t> px = {0, 255, 0, 255, 255, 255, 255, 255};  // 2 images x 2 pixels x 2 channels
    const ImageSet s = data::detail::make_set(px.data(), 2, 1, 2, 2, {0, 1});
    const auto [mean, stdev] = channel_mean_std(s);
    CHECK(mean == std::vector<double>{0.5, 1.0});
    CHECK(stdev[0] == 0.5);
    CHECK(stdev[1] == 0.0);
    CHECK_THROWS_WITH(channel_mean_std(data::detail::make_set(px.data(), 0, 1, 2, 2, {})), Catch::Contains("no images"));
    // Normalising, the constant channel gets std 1 (its 0 stopped every run and preview).
    const auto [nmean, nstd] = normalization_mean_std(s);
    CHECK(nmean == mean);
    CHECK(nstd == std::vector<double>{0.5, 1.0});
}

TEST_CASE("format detection, forcing, and bad paths and options", "[data]") {
    TempDir tmp;
    CHECK_THROWS_WITH(load_dataset(tmp.file("nope")), Catch::Contains("nope") && Catch::Contains("does not exist"));
    CHECK_THROWS_WITH(load_dataset(tmp.write("empty.bin", {})), Catch::Contains("empty.bin") && Catch::Contains("empty"));
    CHECK_THROWS_WITH(load_dataset(tmp.write("one.png", test::png_bytes(1, 1, 1, {0}))), Catch::Contains("single image"));
    CHECK_THROWS_WITH(load_dataset(tmp.write("a.npy", test::npy_bytes("|u1", {1}, {0}))), Catch::Contains(".npy"));
    CHECK_THROWS_WITH(load_dataset(tmp.write("x.gz", test::gzip_bytes({1, 2, 3, 4, 5}))), Catch::Contains("neither"));
    CHECK_THROWS_WITH(load_dataset(tmp.write("bin", {0, 1, 2, 0xff})), Catch::Contains("unrecognised"));
    tmp.write("twonpz/a.npz", test::zip_bytes({}));
    tmp.write("twonpz/b.npz", test::zip_bytes({}));
    CHECK_THROWS_WITH(load_dataset(tmp.file("twonpz")), Catch::Contains("2 .npz files"));
    // Forcing a format that does not fit gives that format's error.
    const std::string idx = tmp.write("i/train-images-idx3-ubyte", test::idx_bytes(8, {1, 1, 1}, {5}));
    LoadOptions o;
    o.format = Format::npz;
    CHECK_THROWS_WITH(load_dataset(idx, o), Catch::Contains("not an .npz"));
    o.format = Format::digits_csv;
    CHECK_THROWS_AS(load_dataset(idx, o), Error);
    o.format = Format::image_folder;
    CHECK_THROWS_WITH(load_dataset(idx, o), Catch::Contains("not a directory"));
    o = LoadOptions();
    o.val_fraction = 1.0;
    CHECK_THROWS_WITH(load_dataset(idx, o), Catch::Contains("val_fraction"));
    CHECK(parse_format("image_folder") == Format::image_folder);
    CHECK(parse_format("auto") == Format::automatic);
    CHECK_THROWS_WITH(parse_format("csv"), Catch::Contains("unknown dataset format"));
}
