// MedMNIST .npz datasets, the .npy and ZIP readers under them, and broken archives.
#include <cstdint>
#include <catch2/catch.hpp>

#include "engine/data/dataset.h"
#include "engine/data/npy.h"
#include "engine/data/zip.h"
#include "tests/data/fixtures.h"
#include "tests/support/datasets.h"

using namespace hpt;
using namespace hpt::data;
using hpt::test::Bytes;
using hpt::test::TempDir;
using hpt::test::ZipEntry;

namespace {
// A tiny MedMNIST-like archive: 4/2/3 RGB images of 2x2, labels (N, 1) of type `label_descr`.
std::vector<ZipEntry> medmnist_like(const std::string& label_descr = "|u1") {
    std::vector<ZipEntry> z;
    const int64_t n[3] = {4, 2, 3};
    const char* split[3] = {"train", "val", "test"};
    for (int s = 0; s < 3; ++s)
        z.push_back({std::string(split[s]) + "_images.npy", test::npy_bytes("|u1", {n[s], 2, 2, 3}, test::pattern(2, 2, 3 * int(n[s]), s))});
    for (int s = 0; s < 3; ++s) {
        Bytes lab;
        const int size = label_descr[2] - '0';
        for (int64_t i = 0; i < n[s]; ++i)
            for (int b = 0; b < size; ++b)
                lab.push_back(b == (label_descr[0] == '>' ? size - 1 : 0) ? uint8_t((i + s) % 3) : 0);
        z.push_back({std::string(split[s]) + "_labels.npy", test::npy_bytes(label_descr, {n[s], 1}, lab)});
    }
    return z;
}
}  // namespace

TEST_CASE("real RetinaMNIST and BreastMNIST: splits, label counts, pixels", "[data][real]") {
    const std::string retina = test::find_dataset_dir("retinamnist", "retinamnist.npz");
    const std::string breast = test::find_dataset_dir("breastmnist", "breastmnist.npz");
    if (retina.empty() || breast.empty()) {
        WARN("MedMNIST files not found (shared/datasets): real-data part skipped");
        return;
    }
    const Dataset r = load_dataset(retina);  // the directory: its one .npz
    CHECK(r.format == "npz");
    CHECK_FALSE(r.val_carved);
    REQUIRE(r.train.images.shape() == Shape{1080, 28, 28, 3});
    REQUIRE(r.val.images.shape() == Shape{120, 28, 28, 3});
    REQUIRE(r.test.images.shape() == Shape{400, 28, 28, 3});
    CHECK(r.train.num_classes == 5);
    CHECK(class_counts(r.train) == std::vector<int64_t>{486, 128, 206, 194, 66});
    CHECK(class_counts(r.val) == std::vector<int64_t>{54, 12, 28, 20, 6});
    CHECK(class_counts(r.test) == std::vector<int64_t>{174, 46, 92, 68, 20});
    const uint8_t* p = r.train.images.data<uint8_t>();
    CHECK(std::vector<int>(p, p + 6) == std::vector<int>{2, 0, 6, 4, 3, 9});
    CHECK(r.train.labels.to_vector<int64_t>()[3] == 4);
    const auto [mean, stdev] = channel_mean_std(r.train);
    REQUIRE(mean.size() == 3);
    CHECK(mean[0] == Approx(0.39838942).epsilon(1e-6));
    CHECK(mean[2] == Approx(0.15575321).epsilon(1e-6));
    CHECK(stdev[1] == Approx(0.20048242).epsilon(1e-6));

    const Dataset b = load_dataset(breast + "/breastmnist.npz");
    REQUIRE(b.train.images.shape() == Shape{546, 28, 28, 1});
    CHECK(b.val.size() == 78);
    CHECK(b.test.size() == 156);
    CHECK(class_counts(b.train) == std::vector<int64_t>{147, 399});
    CHECK(class_counts(b.test) == std::vector<int64_t>{42, 114});
    CHECK(int(b.val.images.data<uint8_t>()[0]) == 177);

    // The real archive with a flipped CRC byte in its first local header, and truncated.
    Bytes bytes = test::read_bytes(breast + "/breastmnist.npz");
    TempDir tmp;
    Bytes bad = bytes;
    bad[14] ^= 1;
    CHECK_THROWS_WITH(load_dataset(tmp.write("crc.npz", bad)), Catch::Contains("crc.npz:train_images.npy") &&
                                                                  Catch::Contains("CRC-32 mismatch"));
    for (size_t cut : {size_t(3), size_t(29), size_t(100), bytes.size() / 2, bytes.size() - 100}) {
        INFO("cut at " << cut);
        CHECK_THROWS_WITH(load_dataset(tmp.write("cut.npz", Bytes(bytes.begin(), bytes.begin() + long(cut))),
                                       [] { LoadOptions o; o.format = Format::npz; return o; }()),
                          Catch::Contains("cut.npz"));
    }
}

TEST_CASE("npz: deflate, stored, ZIP64 extras, data descriptors, integer label types", "[data]") {
    TempDir tmp;
    test::ZipOptions variants[] = {{true, false, false, false}, {false, false, false, false}, {true, true, false, false},
                                   {true, false, true, false},  {true, true, false, true}};
    int i = 0;
    for (const auto& o : variants) {
        for (const char* descr : {"|u1", "<i8", ">i4", "<u2"}) {
            INFO("variant " << i << " labels " << descr);
            const std::string p = tmp.write("v" + std::to_string(i++) + ".npz", test::zip_bytes(medmnist_like(descr), o));
            const Dataset ds = load_dataset(p);
            CHECK(ds.train.images.shape() == Shape{4, 2, 2, 3});
            CHECK(ds.val.size() == 2);
            CHECK(ds.test.size() == 3);
            CHECK(ds.train.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 0});
            CHECK(ds.test.labels.to_vector<int64_t>() == std::vector<int64_t>{2, 0, 1});
            CHECK(ds.train.num_classes == 3);
            CHECK(ds.train.images.data<uint8_t>()[5] == test::pattern(2, 2, 12, 0)[5]);
        }
    }
    // Keras-style names, gray images (N, H, W), no val and no test: both carved (test first: 2 of 10).
    const Bytes img = test::pattern(3, 3, 10, 1);
    Bytes lab(10);
    for (int k = 0; k < 10; ++k) lab[size_t(k)] = uint8_t(k % 2);
    const std::string p = tmp.write("keras.npz", test::zip_bytes({{"x_train.npy", test::npy_bytes("|u1", {10, 3, 3}, img)},
                                                                   {"y_train.npy", test::npy_bytes("|u1", {10}, lab)}}));
    const Dataset k = load_dataset(p);
    CHECK(k.train.size() == 7);
    CHECK(k.val.size() == 1);
    CHECK(k.val_carved);
    CHECK(k.test.images.shape() == Shape{2, 3, 3, 1});
    CHECK(k.test_carved);
    LoadOptions whole;
    whole.val_fraction = whole.test_fraction = 0;
    CHECK(load_dataset(p, whole).train.size() == 10);
}

TEST_CASE("npz files written by numpy itself (the fuzz seeds)", "[data]") {
    const std::string dir = std::string(HPT_SOURCE_DIR) + "/tests/fuzz/corpus/npz/";
    // savez_compressed: deflate members with numpy's ZIP64 extra fields, labels (N, 1).
    const Dataset med = load_dataset(dir + "medmnist_like");
    CHECK(med.format == "npz");
    CHECK(med.train.images.shape() == Shape{3, 4, 4, 1});
    CHECK(med.val.size() == 1);
    CHECK(med.test.size() == 2);
    CHECK(med.train.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2});
    // savez: stored members, Keras names, no val or test (carved: 1 test, then 2 train images are
    // too few to give one to val).
    const Dataset keras = load_dataset(dir + "stored_keras");
    CHECK(keras.train.size() == 2);
    CHECK(keras.test.size() == 1);
    CHECK(keras.train.images.to_vector<uint8_t>().size() + keras.test.images.to_vector<uint8_t>().size() == 48);
    CHECK_THROWS_WITH(load_dataset(dir + "bad_crc"), Catch::Contains("CRC-32 mismatch"));
    CHECK_THROWS_WITH(load_dataset(dir + "truncated"), Catch::Contains("truncated"));
}

TEST_CASE("bad npz and npy: CRC, sizes, shapes, dtypes, counts", "[data]") {
    TempDir tmp;
    auto fails = [&](const std::string& name, const Bytes& b, const char* why) {
        INFO(name << " should fail with: " << why);
        LoadOptions o;
        o.format = Format::npz;
        CHECK_THROWS_WITH(load_dataset(tmp.write(name, b), o), Catch::Contains(name) && Catch::Contains(why));
    };
    Bytes good = test::zip_bytes(medmnist_like(), {false, false, false, false});
    // Stored: the first member's data starts right after its 30-byte header and 16-byte name.
    Bytes flip = good;
    flip[30 + 16 + 100] ^= 1;
    fails("flip.npz", flip, "CRC-32 mismatch");
    Bytes crc = good;
    crc[14] ^= 0x80;
    fails("crc.npz", crc, "CRC-32 mismatch");
    Bytes size = good;
    size[22] ^= 0x01;  // uncompressed size no longer equals the stored size
    fails("size.npz", size, "stored member");
    Bytes sig = good;
    sig[0] = 'X';
    fails("sig.npz", sig, "not an .npz");
    Bytes deflated = test::zip_bytes(medmnist_like());
    deflated[22] ^= 0x04;  // declared size off by 1024
    fails("usize.npz", deflated, "declares");
    const size_t cd = good[good.size() - 6] | (good[good.size() - 5] << 8);  // the EOCD's directory offset
    fails("nocd.npz", Bytes(good.begin(), good.begin() + long(cd)), "no central directory");
    fails("method.npz", [&] { Bytes b = good; b[8] = 12; return b; }(), "method 12");
    fails("empty.npz", test::zip_bytes({}), "no image arrays");

    auto npz_with = [](const Bytes& images_npy, const Bytes& labels_npy) {
        return test::zip_bytes({{"train_images.npy", images_npy}, {"train_labels.npy", labels_npy}});
    };
    const Bytes labels3 = test::npy_bytes("|u1", {3, 1}, {0, 1, 0});
    fails("shape.npz", npz_with(test::npy_bytes("|u1", {3, 2, 2}, test::pattern(2, 2, 2, 0)), labels3), "(truncated)");
    fails("extra.npz", npz_with(test::npy_bytes("|u1", {3, 2, 2}, test::pattern(2, 2, 4, 0)), labels3), "(extra data)");
    fails("count.npz", npz_with(test::npy_bytes("|u1", {2, 2, 2}, test::pattern(2, 2, 2, 0)), labels3), "count mismatch");
    fails("float.npz", npz_with(test::npy_bytes("<f4", {3, 2, 2}, test::pattern(2, 2, 12, 0)), labels3), "'<f4'");
    fails("wide.npz", npz_with(test::npy_bytes("<u2", {3, 2, 2}, test::pattern(2, 2, 6, 0)), labels3), "uint8");
    fails("chan.npz", npz_with(test::npy_bytes("|u1", {3, 2, 2, 5}, test::pattern(2, 2, 15, 0)), labels3), "1|3");
    fails("multi.npz", npz_with(test::npy_bytes("|u1", {3, 2, 2}, test::pattern(2, 2, 3, 0)), test::npy_bytes("|u1", {3, 2}, Bytes(6))),
          "multi-label");
    fails("neg.npz", npz_with(test::npy_bytes("|u1", {3, 2, 2}, test::pattern(2, 2, 3, 0)), test::npy_bytes("|i1", {3}, {0, 255, 1})),
          "label -1");
}

TEST_CASE("npy header parsing", "[data]") {
    const Bytes ok = test::npy_bytes("<i8", {2}, {1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
    const NpyArray a = parse_npy(ok.data(), ok.size(), "a.npy");
    CHECK(a.shape == std::vector<int64_t>{2});
    CHECK(npy_to_int64(a, "a.npy") == std::vector<int64_t>{1, -1});
    const Bytes v2 = test::npy_bytes("|u1", {1, 2}, {7, 8}, 2);
    CHECK(parse_npy(v2.data(), v2.size(), "v2").data == Bytes{7, 8});
    const Bytes scalar = test::npy_bytes("|u1", {}, {9});
    CHECK(parse_npy(scalar.data(), scalar.size(), "s").shape.empty());

    auto header = [](const std::string& dict) {
        std::string s = std::string("\x93NUMPY\x01\x00", 8) + char(dict.size()) + '\0' + dict;
        return Bytes(s.begin(), s.end());
    };
    auto bad = [](const Bytes& b, const char* why) {
        INFO(why);
        CHECK_THROWS_WITH(parse_npy(b.data(), b.size(), "h.npy"), Catch::Contains("h.npy") && Catch::Contains(why));
    };
    bad(header("{'descr': '|u1', 'fortran_order': True, 'shape': (2, 2), }"), "Fortran");
    bad(header("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2) "), "bad .npy header");
    bad(header("{'descr': '|u1', 'fortran_order': False}"), "exactly descr");
    bad(header("{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,)}"), "bad .npy header");
    bad(header("{'descr': '|u1', 'fortran_order': False, 'shape': (-1,)}"), "non-negative");
    bad(header("{'descr': '|u1', 'fortran_order': False, 'shape': (99999999999999999999,)}"), "too large");
    bad(header("{'descr': '|u1', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296)}"), "too large");
    bad(header("{'descr': 'O', 'fortran_order': False, 'shape': (1,)}"), "not supported");
    bad(Bytes{0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 200, 0, '{'}, "truncated");
    bad(Bytes{0x93, 'N', 'U', 'M', 'P', 'Y', 9, 0, 0, 0}, "version 9");
    bad(Bytes{'N', 'U', 'M'}, "magic");
}
