// IDX datasets: real Fashion-MNIST and MNIST-test when present, synthetic files, and broken ones.
#include <cstdint>
#include <catch2/catch.hpp>

#include "engine/data/dataset.h"
#include "engine/data/gzip.h"
#include "engine/data/idx.h"
#include "tests/data/fixtures.h"
#include "tests/support/datasets.h"

using namespace hpt;
using namespace hpt::data;
using hpt::test::Bytes;
using hpt::test::TempDir;

namespace {
Bytes iota_bytes(size_t n, int start = 0) {
    Bytes b(n);
    for (size_t i = 0; i < n; ++i) b[i] = uint8_t(start + i);
    return b;
}
}  // namespace

TEST_CASE("real Fashion-MNIST: counts, classes, known pixels, carved val", "[data][real]") {
    const std::string dir = test::find_dataset_dir("fashion-mnist", "train-images-idx3-ubyte.gz");
    if (dir.empty()) {
        FAIL("Fashion-MNIST not found: install Debian's dataset-fashion-mnist (tools/install-deps) or set HPT_DATA_DIR");
    }
    LoadOptions opt;
    opt.val_fraction = 0;  // the whole training split, to count its classes
    const Dataset ds = load_dataset(dir, opt);
    CHECK(ds.format == "idx");
    REQUIRE(ds.train.images.shape() == Shape{60000, 28, 28, 1});
    REQUIRE(ds.test.images.shape() == Shape{10000, 28, 28, 1});
    CHECK(ds.val.size() == 0);
    CHECK_FALSE(ds.val_carved);
    CHECK(ds.train.num_classes == 10);
    CHECK(class_counts(ds.train) == std::vector<int64_t>(10, 6000));
    CHECK(class_counts(ds.test) == std::vector<int64_t>(10, 1000));
    const int64_t* tl = ds.train.labels.data<int64_t>();
    CHECK(std::vector<int64_t>(tl, tl + 10) == std::vector<int64_t>{9, 0, 0, 3, 0, 2, 7, 2, 5, 5});
    CHECK(ds.test.labels.data<int64_t>()[0] == 9);
    const uint8_t* px = ds.train.images.data<uint8_t>();
    CHECK(int(px[14 * 28 + 14]) == 217);
    int64_t sum0 = 0;
    for (int i = 0; i < 784; ++i) sum0 += px[i];
    CHECK(sum0 == 76247);
    CHECK(int(ds.test.images.data<uint8_t>()[14 * 28 + 14]) == 110);

    const auto [mean, stdev] = channel_mean_std(ds.train);
    REQUIRE(mean.size() == 1);
    CHECK(mean[0] == Approx(0.2860405969887955).epsilon(1e-9));
    CHECK(stdev[0] == Approx(0.3530242445149223).epsilon(1e-9));

    // The default carve: 10% of train, seeded.
    const auto [rest, val] = carve(ds.train, 0.1, 0);
    CHECK(rest.size() == 54000);
    CHECK(val.size() == 6000);
}

TEST_CASE("real MNIST test-only directory becomes a test split", "[data][real]") {
    const std::string dir = test::find_dataset_dir("mnist", "t10k-images-idx3-ubyte.gz");
    if (dir.empty()) {
        WARN("MNIST test set not found: real-data part skipped");
        return;
    }
    const Dataset ds = load_dataset(dir);
    CHECK(ds.train.size() == 0);
    CHECK(ds.val.size() == 0);
    CHECK_FALSE(ds.val_carved);
    REQUIRE(ds.test.images.shape() == Shape{10000, 28, 28, 1});
    CHECK(ds.train.images.shape() == Shape{0, 28, 28, 1});
    CHECK(class_counts(ds.test) == std::vector<int64_t>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009});
    const int64_t* l = ds.test.labels.data<int64_t>();
    CHECK(std::vector<int64_t>(l, l + 5) == std::vector<int64_t>{7, 2, 1, 0, 4});
}

TEST_CASE("real gzip truncated at many points or with a flipped byte is an error naming the file", "[data][real]") {
    const std::string dir = test::find_dataset_dir("fashion-mnist", "t10k-labels-idx1-ubyte.gz");
    if (dir.empty()) {
        FAIL("Fashion-MNIST not found: install Debian's dataset-fashion-mnist (tools/install-deps) or set HPT_DATA_DIR");
    }
    const Bytes gz = test::read_bytes(dir + "/t10k-labels-idx1-ubyte.gz");
    REQUIRE(parse_idx(gz.data(), gz.size(), "x").dims == std::vector<int64_t>{10000});
    TempDir tmp;
    for (size_t cut : {size_t(0), size_t(1), size_t(9), size_t(10), size_t(40), gz.size() / 2, gz.size() - 9,
                       gz.size() - 4, gz.size() - 1}) {
        INFO("cut at " << cut);
        const std::string p = tmp.write("cut.gz", Bytes(gz.begin(), gz.begin() + long(cut)));
        CHECK_THROWS_WITH(read_idx(p), Catch::Contains("cut.gz"));
    }
    // A flipped byte in the trailer's CRC-32, and one in the deflate data.
    Bytes bad = gz;
    bad[bad.size() - 6] ^= 0x40;
    CHECK_THROWS_WITH(read_idx(tmp.write("crc.gz", bad)), Catch::Contains("crc.gz") && Catch::Contains("CRC"));
    bad = gz;
    bad[gz.size() / 2] ^= 0xff;
    CHECK_THROWS_AS(read_idx(tmp.write("flip.gz", bad)), Error);
}

TEST_CASE("IDX directory, raw and gzip, and an image file with its labels beside it", "[data]") {
    TempDir tmp;
    const Bytes imgs = iota_bytes(5 * 4 * 3);
    tmp.write("d/train-images-idx3-ubyte.gz", test::gzip_bytes(test::idx_bytes(8, {5, 4, 3}, imgs)));
    tmp.write("d/train-labels-idx1-ubyte", test::idx_bytes(8, {5}, {0, 1, 2, 1, 0}));
    tmp.write("d/t10k-images-idx3-ubyte", test::idx_bytes(8, {2, 4, 3}, iota_bytes(24, 100)));
    tmp.write("d/t10k-labels-idx1-ubyte.gz", test::gzip_bytes(test::idx_bytes(8, {2}, {2, 2})));
    LoadOptions opt;
    opt.val_fraction = 0.4;
    const Dataset ds = load_dataset(tmp.file("d"), opt);
    CHECK(detect_format(tmp.file("d")) == Format::idx);
    CHECK(ds.train.images.shape() == Shape{3, 4, 3, 1});
    CHECK(ds.val.images.shape() == Shape{2, 4, 3, 1});
    CHECK(ds.val_carved);
    CHECK(ds.test.images.shape() == Shape{2, 4, 3, 1});
    CHECK(ds.test.num_classes == 3);
    CHECK(ds.test.images.data<uint8_t>()[0] == 100);

    // The file pair on its own: labels found by name, split by the t10k prefix.
    const Dataset one = load_dataset(tmp.file("d/t10k-images-idx3-ubyte"));
    CHECK(one.test.size() == 2);
    CHECK(one.train.size() == 0);
    CHECK(one.test.labels.to_vector<int64_t>() == std::vector<int64_t>{2, 2});
    // An images file without labels: unlabeled.
    tmp.write("u/images-idx3-ubyte", test::idx_bytes(8, {3, 2, 2}, iota_bytes(12)));
    LoadOptions keep;
    keep.val_fraction = 0;
    const Dataset u = load_dataset(tmp.file("u/images-idx3-ubyte"), keep);
    CHECK(u.train.labels.to_vector<int64_t>() == std::vector<int64_t>{-1, -1, -1});
    CHECK(u.train.num_classes == 0);
    CHECK_THROWS_WITH(load_dataset(tmp.file("d/train-labels-idx1-ubyte")), Catch::Contains("labels file"));
}

TEST_CASE("bad IDX files: magic, type, sizes, counts", "[data]") {
    TempDir tmp;
    auto fails = [&](const std::string& name, const Bytes& b, const char* why) {
        INFO(name);
        const std::string p = tmp.write(name, b);
        CHECK_THROWS_WITH(read_idx(p), Catch::Contains(name) && Catch::Contains(why));
    };
    fails("magic", {1, 2, 8, 1, 0, 0, 0, 0}, "not an IDX");
    fails("type", test::idx_bytes(0x0d, {1}, {0, 0, 0, 0}), "not supported");
    fails("short", test::idx_bytes(8, {4, 2, 2}, iota_bytes(15)), "truncated");
    fails("long", test::idx_bytes(8, {4}, iota_bytes(5)), "extra data");
    fails("header", {0, 0, 8, 3, 0, 0}, "truncated");
    fails("empty", {}, "truncated");
    fails("zero-dims", {0, 0, 8, 0}, "0 dimensions");
    // A forged header cannot make us allocate 4 GiB from a 20-byte (or gzipped) file.
    fails("huge", test::idx_bytes(8, {0xffffffffu, 0xffffffffu, 0xffffffffu}, iota_bytes(4)), "too large");
    fails("huge2", test::idx_bytes(8, {0xffffffffu}, iota_bytes(4)), "truncated");
    fails("huge.gz", test::gzip_bytes(test::idx_bytes(8, {60000, 28, 28}, iota_bytes(100))), "truncated");
    fails("garbage.gz", [] {
        Bytes b = test::gzip_bytes(test::idx_bytes(8, {2}, {1, 2}));
        b.push_back('x');
        return b;
    }(), "trailing garbage");

    tmp.write("m/train-images-idx3-ubyte", test::idx_bytes(8, {3, 2, 2}, iota_bytes(12)));
    tmp.write("m/train-labels-idx1-ubyte", test::idx_bytes(8, {4}, {0, 1, 0, 1}));
    CHECK_THROWS_WITH(load_dataset(tmp.file("m")), Catch::Contains("count mismatch") && Catch::Contains("3 images") &&
                                                       Catch::Contains("4 labels"));
    tmp.write("w/train-images-idx3-ubyte", test::idx_bytes(8, {3}, iota_bytes(3)));
    CHECK_THROWS_WITH(load_dataset(tmp.file("w")), Catch::Contains("[N, H, W]"));
    tmp.write("l/train-labels-idx1-ubyte", test::idx_bytes(8, {1}, {0}));
    CHECK_THROWS_WITH(load_dataset(tmp.file("l")), Catch::Contains("no images file"));
    tmp.write("s/train-images-idx3-ubyte", test::idx_bytes(8, {1, 2, 2}, iota_bytes(4)));
    tmp.write("s/t10k-images-idx3-ubyte", test::idx_bytes(8, {1, 3, 3}, iota_bytes(9)));
    CHECK_THROWS_WITH(load_dataset(tmp.file("s")), Catch::Contains("splits differ in image shape"));
}

TEST_CASE("gzip: concatenated members and zero padding are read; a bomb is capped", "[data]") {
    Bytes a = test::gzip_bytes({1, 2, 3}), b = test::gzip_bytes({4, 5});
    Bytes both = a;
    both.insert(both.end(), b.begin(), b.end());
    both.insert(both.end(), 8, 0);
    CHECK(gunzip(both.data(), both.size(), "x", 100) == Bytes{1, 2, 3, 4, 5});
    const Bytes zeros = test::gzip_bytes(Bytes(1 << 20, 0));
    CHECK(zeros.size() < 2000);
    CHECK_THROWS_WITH(gunzip(zeros.data(), zeros.size(), "bomb.gz", 1000), Catch::Contains("bomb.gz") && Catch::Contains("more than 1000"));
    CHECK(gunzip(zeros.data(), zeros.size(), "x", 1 << 20).size() == size_t(1) << 20);
}
