// Image folders and list files: class folders, flat folders, split subfolders, resizing, channel
// mixing, and unreadable files (skipped and counted, or an error under strict).
#include <cstdint>
#include <catch2/catch.hpp>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "engine/data/dataset.h"
#include "engine/data/image_decode.h"
#include "engine/data/list_file.h"
#include "engine/io/atomic_file.h"
#include "tests/data/fixtures.h"
#include "tests/support/stderr_capture.h"

using namespace hpt;
using namespace hpt::data;
using hpt::test::Bytes;
using hpt::test::TempDir;

TEST_CASE("class folders: sorted class names, labels, mixed gray and RGB become RGB", "[data]") {
    TempDir tmp;
    tmp.write("root/cat/a.png", test::png_bytes(4, 3, 1, test::pattern(4, 3, 1, 1)));
    tmp.write("root/cat/b.PNG", test::png_bytes(4, 3, 3, test::pattern(4, 3, 3, 2)));
    tmp.write("root/ant/x.bmp", test::bmp_bytes(4, 3, 3, test::pattern(4, 3, 3, 3)));
    tmp.write("root/ant/deeper/y.png", test::png_bytes(4, 3, 4, test::pattern(4, 3, 4, 4)));  // RGBA: alpha dropped
    tmp.write("root/dog/z.jpg", test::jpg_bytes(4, 3, 3, test::pattern(4, 3, 3, 5)));
    tmp.write_text("root/dog/notes.txt", "not an image");
    tmp.write_text("root/.hidden/q.png", "ignored");
    LoadOptions o;
    o.val_fraction = 0, o.test_fraction = 0;  // the reader's output alone
    const Dataset ds = load_dataset(tmp.file("root"), o);
    CHECK(ds.format == "image_folder");
    CHECK(ds.class_names == std::vector<std::string>{"ant", "cat", "dog"});
    REQUIRE(ds.train.images.shape() == Shape{5, 3, 4, 3});
    CHECK(ds.train.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 0, 1, 1, 2});
    CHECK(ds.train.num_classes == 3);
    // The gray PNG (third image) is replicated into three equal channels, exactly.
    const uint8_t* p = ds.train.images.data<uint8_t>() + 2 * 36;
    const Bytes gray = test::pattern(4, 3, 1, 1);
    for (int i = 0; i < 12; ++i) {
        CHECK(p[3 * i] == gray[size_t(i)]);
        CHECK(p[3 * i + 2] == gray[size_t(i)]);
    }
    // Lossless formats keep their bytes; paths sort as a whole, so ant/deeper/y.png comes first.
    const Bytes bmp = test::pattern(4, 3, 3, 3);
    CHECK(Bytes(ds.train.images.data<uint8_t>() + 36, ds.train.images.data<uint8_t>() + 72) == bmp);
}

TEST_CASE("flat folder, split subfolders, resize to image_size", "[data]") {
    TempDir tmp;
    for (int i = 0; i < 5; ++i)
        tmp.write("flat/img" + std::to_string(i) + ".png", test::png_bytes(6, 6, 1, test::pattern(6, 6, 1, i)));
    LoadOptions o;
    o.val_fraction = 0.2;
    const Dataset flat = load_dataset(tmp.file("flat"), o);
    CHECK(flat.train.size() == 4);
    CHECK(flat.val.size() == 1);
    CHECK(flat.val_carved);
    CHECK(flat.train.labels.to_vector<int64_t>() == std::vector<int64_t>(4, -1));
    CHECK(flat.train.num_classes == 0);

    tmp.write("split/train/b/1.png", test::png_bytes(8, 4, 3, test::pattern(8, 4, 3, 1)));
    tmp.write("split/train/a/1.png", test::png_bytes(2, 2, 3, Bytes(12, 200)));
    tmp.write("split/val/a/1.png", test::png_bytes(5, 5, 3, test::pattern(5, 5, 3, 2)));
    tmp.write("split/test/c/1.png", test::png_bytes(3, 3, 3, test::pattern(3, 3, 3, 3)));
    CHECK_THROWS_WITH(load_dataset(tmp.file("split")), Catch::Contains("differ in size") && Catch::Contains("run.load_size"));
    o.image_size = 4;
    const Dataset sp = load_dataset(tmp.file("split"), o);
    CHECK_FALSE(sp.val_carved);
    CHECK(sp.class_names == std::vector<std::string>{"a", "b", "c"});
    CHECK(sp.train.images.shape() == Shape{2, 4, 4, 3});
    CHECK(sp.val.labels.to_vector<int64_t>() == std::vector<int64_t>{0});
    CHECK(sp.test.labels.to_vector<int64_t>() == std::vector<int64_t>{2});
    // A constant image stays constant through the resize.
    const std::vector<uint8_t> a = sp.train.images.select(0, 0).contiguous().to_vector<uint8_t>();
    CHECK(a == std::vector<uint8_t>(48, 200));

    Image up;
    up.width = 2;
    up.height = 1;
    up.channels = 1;
    up.pixels = {0, 200};
    CHECK(resize_image(up, 4, 1).pixels == Bytes{0, 50, 150, 200});  // bilinear, pixel centres, clamped edges
}

TEST_CASE("unreadable images are skipped and counted, or an error when strict", "[data]") {
    TempDir tmp;
    for (int i = 0; i < 4; ++i)
        tmp.write("f/c/good" + std::to_string(i) + ".png", test::png_bytes(3, 3, 1, test::pattern(3, 3, 1, i)));
    Bytes broken = test::png_bytes(3, 3, 1, test::pattern(3, 3, 1, 9));
    broken.resize(broken.size() / 2);
    tmp.write("f/c/broken.png", broken);
    tmp.write_text("f/c/junk.jpg", "definitely not a jpeg");
    LoadOptions o;
    o.val_fraction = 0, o.test_fraction = 0;
    test::StderrCapture err;
    const Dataset ds = load_dataset(tmp.file("f"), o);
    CHECK(ds.train.size() == 4);
    CHECK(ds.skipped_images == 2);
    // Both named (the warning named only the first), up to five of them.
    const std::string warned = err.text();
    CHECK_THAT(warned, Catch::Contains("skipped 2 unreadable images") && Catch::Contains("broken.png") && Catch::Contains("junk.jpg"));
    for (int i = 0; i < 6; ++i) tmp.write_text("f/c/junk" + std::to_string(i) + ".png", "not a png");
    test::StderrCapture err8;
    CHECK(load_dataset(tmp.file("f"), o).skipped_images == 8);
    const std::string warned8 = err8.text();
    CHECK_THAT(warned8, Catch::Contains("skipped 8 unreadable images") && Catch::Contains("... and 3 more"));
    CHECK(std::count(warned8.begin(), warned8.end(), '\n') == 7);  // the count, five files, the rest
    o.strict = true;
    CHECK_THROWS_WITH(load_dataset(tmp.file("f"), o), Catch::Contains("broken.png") && Catch::Contains("strict"));

    tmp.write_text("bad/c/x.png", "nope");
    o.strict = false;
    CHECK_THROWS_WITH(load_dataset(tmp.file("bad"), o), Catch::Contains("none of the 1 image files"));
}

TEST_CASE("a JPEG whose Huffman table claims more than 256 codes is refused before stb sees it", "[data]") {
    // stb_image 2.27 writes past its tables on this (found by fuzz_image; nothings/stb #1289).
    Bytes jpg = {0xff, 0xd8, 0xff, 0xc4, 0x00, 19, 0x00};
    jpg.insert(jpg.end(), 16, 0xff);
    jpg.insert(jpg.end(), 64, 0x01);
    CHECK_THROWS_WITH(decode_image(jpg.data(), jpg.size(), "evil.jpg"),
                      Catch::Contains("evil.jpg") && Catch::Contains("more than 256 codes"));
    // Bytes between SOI and the segment do not hide it (stb skips them too).
    jpg.insert(jpg.begin() + 2, {0x00, 0x12});
    CHECK_THROWS_WITH(decode_image(jpg.data(), jpg.size(), "evil.jpg"), Catch::Contains("more than 256 codes"));
    // Nor do fill bytes before SOI, which stb skips (fuzz_image found the check skipped for them).
    jpg.insert(jpg.begin(), {0xff, 0xff});
    CHECK_THROWS_WITH(decode_image(jpg.data(), jpg.size(), "evil.jpg"), Catch::Contains("more than 256 codes"));
    const Bytes ok = test::jpg_bytes(8, 8, 3, test::pattern(8, 8, 3, 1));
    CHECK(decode_image(ok.data(), ok.size(), "ok.jpg").channels == 3);
}

TEST_CASE("list files: relative paths, labels, comments, missing files", "[data]") {
    TempDir tmp;
    tmp.write("imgs/a.png", test::png_bytes(2, 2, 1, test::pattern(2, 2, 1, 1)));
    tmp.write("imgs/b c.png", test::png_bytes(2, 2, 1, test::pattern(2, 2, 1, 2)));
    tmp.write("imgs/d.png", test::png_bytes(2, 2, 3, test::pattern(2, 2, 3, 3)));
    const std::string list = tmp.write_text("list.txt", "# path label\nimgs/a.png 3\n\nimgs/b c.png\t1\n" + tmp.file("imgs/d.png") + " 0\r\nimgs/missing.png 2\n");
    CHECK(detect_format(list) == Format::list_file);
    LoadOptions o;
    o.val_fraction = 0, o.test_fraction = 0;
    const Dataset ds = load_dataset(list, o);
    CHECK(ds.format == "list_file");
    CHECK(ds.skipped_images == 1);
    REQUIRE(ds.train.images.shape() == Shape{3, 2, 2, 3});
    CHECK(ds.train.labels.to_vector<int64_t>() == std::vector<int64_t>{3, 1, 0});
    CHECK(ds.train.num_classes == 4);

    const std::string unl = tmp.write_text("u.txt", "imgs/a.png\nimgs/b c.png\n");
    CHECK(load_dataset(unl, o).train.labels.to_vector<int64_t>() == std::vector<int64_t>{-1, -1});
    const std::string mixed = tmp.write_text("m.txt", "imgs/a.png 1\nimgs/d.png\n");
    CHECK_THROWS_WITH(load_dataset(mixed, o), Catch::Contains("m.txt:2"));
    const std::string empty = tmp.write_text("e.txt", "# nothing\n");
    CHECK_THROWS_WITH(load_dataset(empty, o), Catch::Contains("e.txt") && Catch::Contains("names no images"));
}

TEST_CASE("list file lines: the path without blanks around it, the label after the last blank", "[data]") {
    auto parse = [](const std::string& text) {
        return parse_list_file(reinterpret_cast<const uint8_t*>(text.data()), text.size(), "l.txt");
    };
    // A carriage return (or any blank) between path and label is not part of the path (the
    // fuzzer found "x m\r\r 1" parsed as the path "x m\r\r").
    const auto e = parse("  a b.png\r 7\nc.png\t\t12 # note\n#x 1\nd#e.png 0\r\n");
    REQUIRE(e.size() == 3);
    CHECK(e[0].path == "a b.png");
    CHECK(e[0].label == 7);
    CHECK(e[1].path == "c.png");
    CHECK(e[1].label == 12);
    CHECK(e[2].path == "d#e.png");
    CHECK(e[2].label == 0);
    // Ten digits are no label: the whole line is the path, and the next line must have none.
    const auto u = parse("a.png 1234567890\nb.png\n");
    REQUIRE(u.size() == 2);
    CHECK(u[0].path == "a.png 1234567890");
    CHECK(u[0].label == -1);
    CHECK_THROWS_WITH(parse("a.png\n\nb.png 2\n"), Catch::Contains("l.txt:3"));
    // The mixed-label error quotes the first line, where a bad label usually is.
    CHECK_THROWS_WITH(parse("a.png cat\nb.png 2\n"),
                      Catch::Contains("l.txt:2: this line has a label but line 1 ('a.png cat') has none"));
    // A byte order mark (Notepad) was part of the first path, which then did not exist.
    const auto bom = parse("\xEF\xBB\xBF" "a.png 1\nb.png 2\n");
    REQUIRE(bom.size() == 2);
    CHECK(bom[0].path == "a.png");
    // A binary file forced to be a list printed its bytes as paths.
    CHECK_THROWS_WITH(parse(std::string("\x89PNG\r\n\x1a\n\0\0", 10)), Catch::Contains("l.txt: not a text file (byte 26 at offset 6)"));
}

TEST_CASE("a list entry whose last word is no label, after an existing file, is an error naming the line", "[data]") {
    // "x.png -1" read as the path "x.png -1", which does not exist: skipped with a warning.
    TempDir tmp;
    tmp.write("imgs/a.png", test::png_bytes(2, 2, 1, test::pattern(2, 2, 1, 1)));
    tmp.write("imgs/b c.png", test::png_bytes(2, 2, 1, test::pattern(2, 2, 1, 2)));
    CHECK_THROWS_WITH(load_dataset(tmp.write_text("n.txt", "imgs/b c.png\nimgs/a.png -1\n")),
                      Catch::Contains("n.txt:2: label '-1' is not a whole number"));
    // A path with a blank in it stays a path.
    LoadOptions o;
    o.val_fraction = 0;
    CHECK(load_dataset(tmp.write_text("ok.txt", "imgs/b c.png\nimgs/a.png\n"), o).train.size() == 2);
}

TEST_CASE("empty and malformed folders are errors naming the folder", "[data]") {
    TempDir tmp;
    tmp.write_text("empty/readme.txt", "no images here");
    CHECK_THROWS_WITH(load_dataset(tmp.file("empty")), Catch::Contains("empty") && Catch::Contains("holds no"));
    tmp.write_text("emptycls/a/readme.txt", "x");
    CHECK_THROWS_WITH(load_dataset(tmp.file("emptycls")), Catch::Contains("holds no"));
    tmp.write("mix/a/1.png", test::png_bytes(2, 2, 1, Bytes(4, 1)));
    tmp.write("mix/2.png", test::png_bytes(2, 2, 1, Bytes(4, 1)));
    CHECK_THROWS_WITH(load_dataset(tmp.file("mix")), Catch::Contains("mixes image files"));
    tmp.write("splitmix/train/1.png", test::png_bytes(2, 2, 1, Bytes(4, 1)));
    tmp.write("splitmix/other/2.png", test::png_bytes(2, 2, 1, Bytes(4, 1)));
    CHECK_THROWS_WITH(load_dataset(tmp.file("splitmix")), Catch::Contains("mixes split folders"));
}

TEST_CASE("class labels beyond 65535 are refused when a dataset is assembled", "[data]") {
    // Every count, probe output and kNN vote is per class: 999999999 made `data inspect` list a
    // billion counts.
    TempDir tmp;
    tmp.write("a.png", test::png_bytes(2, 2, 1, test::pattern(2, 2, 1, 1)));
    tmp.write("b.png", test::png_bytes(2, 2, 1, test::pattern(2, 2, 1, 2)));
    LoadOptions o;
    o.val_fraction = 0;
    CHECK(load_dataset(tmp.write_text("ok.txt", "a.png 0\nb.png 65535\n"), o).train.num_classes == 65536);
    CHECK_THROWS_WITH(load_dataset(tmp.write_text("big.txt", "a.png 0\nb.png 65536\n"), o),
                      Catch::Contains("big.txt: a label of 65536; class labels are 0 to 65535"));
}

TEST_CASE("a labeled folder or list without a test split gets a fixed test carve-out", "[data]") {
    // Before, every image went to train and such a dataset could never be evaluated.
    TempDir tmp;
    std::string list;
    const auto add = [&](int i) {
        const std::string name = "c" + std::to_string(i % 2) + "/i" + std::to_string(i) + ".png";
        tmp.write("root/" + name, test::png_bytes(2, 2, 1, test::pattern(2, 2, 1, i)));
        list += "root/" + name + " " + std::to_string(i % 2) + "\n";
    };
    for (int i = 0; i < 200; ++i) add(i);
    const auto test_names = [](const Dataset& d) { return std::set<std::string>(d.test.names.begin(), d.test.names.end()); };
    for (const bool folder : {true, false}) {
        const std::string path = folder ? tmp.file("root") : tmp.write_text("l.txt", list);
        LoadOptions a, b;
        b.seed = 99;  // the run's seed moves val, never test
        const Dataset da = load_dataset(path, a), db = load_dataset(path, b);
        CHECK(da.test_carved);
        CHECK(da.test.size() > 25);  // about 40 of 200
        CHECK(da.test.size() < 55);
        CHECK(da.train.size() + da.val.size() + da.test.size() == 200);
        CHECK(da.test.images.to_vector<uint8_t>() == db.test.images.to_vector<uint8_t>());
        CHECK(da.test.labels.to_vector<int64_t>() == db.test.labels.to_vector<int64_t>());
        REQUIRE(da.test.names.size() == size_t(da.test.size()));
        CHECK(da.test.names[0].rfind(folder ? "c" : "root/c", 0) == 0);  // relative to the folder, or to the list
    }
    // Adding images leaves every test image in test (a positional carve reshuffled them all, and
    // an old checkpoint's evaluation could then test on images it had pretrained on).
    const std::set<std::string> before = test_names(load_dataset(tmp.file("root")));
    for (int i = 200; i < 230; ++i) add(i);
    const std::set<std::string> after = test_names(load_dataset(tmp.file("root")));
    CHECK(std::includes(after.begin(), after.end(), before.begin(), before.end()));
    // Two images: one each side.
    TempDir two;
    two.write("r/a/x.png", test::png_bytes(2, 2, 1, test::pattern(2, 2, 1, 1)));
    two.write("r/b/y.png", test::png_bytes(2, 2, 1, test::pattern(2, 2, 1, 2)));
    const Dataset d2 = load_dataset(two.file("r"));
    CHECK(d2.test.size() == 1);
    CHECK(d2.train.size() == 1);
    // A list naming its images by absolute path, itself named by a relative path: every name was
    // "" (one hash for all), so the test split was one image. "./x" and "x" were two names too.
    {
        std::string abs, dotted;
        for (int i = 0; i < 200; ++i) {
            const std::string name = "c" + std::to_string(i % 2) + "/i" + std::to_string(i) + ".png";
            abs += tmp.file("root/" + name) + " " + std::to_string(i % 2) + "\n";
            dotted += "./root/" + name + " " + std::to_string(i % 2) + "\n";
        }
        tmp.write_text("abs.txt", abs);
        tmp.write_text("dotted.txt", dotted);
        const std::filesystem::path cwd = std::filesystem::current_path();
        std::filesystem::current_path(tmp.file(""));
        const Dataset da = load_dataset("abs.txt"), dd = load_dataset("dotted.txt"), dl = load_dataset("l.txt");
        std::filesystem::current_path(cwd);
        CHECK(da.test.size() > 25);
        CHECK(test_names(dd) == test_names(dl));
    }
    // Unlabeled images are not carved: they are all for pretraining.
    for (int i = 0; i < 4; ++i) tmp.write("flat/u" + std::to_string(i) + ".png", test::png_bytes(2, 2, 1, test::pattern(2, 2, 1, i)));
    const Dataset flat = load_dataset(tmp.file("flat"));
    CHECK_FALSE(flat.test_carved);
    CHECK(flat.test.size() == 0);
}

TEST_CASE("class folders: empty ones are left out, other files are counted, a linked twin is refused", "[data]") {
    TempDir tmp;
    for (int i = 0; i < 3; ++i) {
        tmp.write("r/cat/" + std::to_string(i) + ".png", test::png_bytes(2, 2, 1, test::pattern(2, 2, 1, i)));
        tmp.write("r/dog/" + std::to_string(i) + ".png", test::png_bytes(2, 2, 1, test::pattern(2, 2, 1, i + 5)));
    }
    tmp.write_text("r/dog/scan.tif", "not read");
    tmp.write_text("r/tifonly/a.tif", "not read");
    std::filesystem::create_directories(tmp.file("r/empty"));
    // Before, 'empty' and 'tifonly' became classes 2 and 3 with no image, silently.
    LoadOptions o;
    o.val_fraction = 0, o.test_fraction = 0;
    const Dataset ds = load_dataset(tmp.file("r"), o);
    CHECK(ds.class_names == std::vector<std::string>{"cat", "dog"});
    CHECK(ds.train.num_classes == 2);
    CHECK(ds.train.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 0, 0, 1, 1, 1});
    // A linked folder inside a class folder: a link to the parent recursed to the system's limit,
    // one to a sibling class gave its images a second label. Left out, and said.
    std::filesystem::create_directory_symlink(tmp.file("r"), tmp.file("r/cat/up"));
    std::filesystem::create_directory_symlink(tmp.file("r/dog"), tmp.file("r/cat/dogs"));
    {
        test::StderrCapture err;
        const Dataset linked = load_dataset(tmp.file("r"), o);
        CHECK(linked.train.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 0, 0, 1, 1, 1});
        CHECK_THAT(err.text(), Catch::Contains("left out 2 linked folders inside class folders"));
    }
    std::filesystem::remove(tmp.file("r/cat/up"));
    std::filesystem::remove(tmp.file("r/cat/dogs"));
    // A link to a class folder gave its images a second label.
    std::filesystem::create_directory_symlink(tmp.file("r/cat"), tmp.file("r/kitty"));
    CHECK_THROWS_WITH(load_dataset(tmp.file("r"), o), Catch::Contains("are the same folder (a link)"));
}

TEST_CASE("Training/ and Testing/ are splits; a test class without training images is pointed out", "[data]") {
    // Kaggle's layout: Training/ and Testing/ became the two classes, their real classes merged,
    // and the real test images were pretrained on.
    TempDir tmp;
    for (int i = 0; i < 4; ++i) {
        tmp.write("k/Training/glioma/" + std::to_string(i) + ".png", test::png_bytes(2, 2, 1, test::pattern(2, 2, 1, i)));
        tmp.write("k/Training/Cat/" + std::to_string(i) + ".png", test::png_bytes(2, 2, 1, test::pattern(2, 2, 1, i + 9)));
        tmp.write("k/Testing/glioma/" + std::to_string(i) + ".png", test::png_bytes(2, 2, 1, test::pattern(2, 2, 1, i + 5)));
        tmp.write("k/Testing/cat/" + std::to_string(i) + ".png", test::png_bytes(2, 2, 1, test::pattern(2, 2, 1, i + 7)));
    }
    LoadOptions o;
    o.val_fraction = 0;
    test::StderrCapture err;
    const Dataset ds = load_dataset(tmp.file("k"), o);
    CHECK(ds.class_names == std::vector<std::string>{"Cat", "cat", "glioma"});
    CHECK(ds.train.size() == 8);
    CHECK(ds.test.size() == 8);
    CHECK_FALSE(ds.test_carved);
    // "cat" in Testing beside "Cat" in Training became its own class without a word.
    CHECK_THAT(err.text(), Catch::Contains("class cat has val or test images but no training images"));
    // Class folders holding only folders: their images take the class's label, and the user is told.
    TempDir deep;
    for (int i = 0; i < 3; ++i) {
        deep.write("d/scans/a/" + std::to_string(i) + ".png", test::png_bytes(2, 2, 1, test::pattern(2, 2, 1, i)));
        deep.write("d/scans/b/" + std::to_string(i) + ".png", test::png_bytes(2, 2, 1, test::pattern(2, 2, 1, i + 3)));
        deep.write("d/other/" + std::to_string(i) + ".png", test::png_bytes(2, 2, 1, test::pattern(2, 2, 1, i + 6)));
    }
    test::StderrCapture err2;
    CHECK(load_dataset(deep.file("d"), o).class_names == std::vector<std::string>{"other", "scans"});
    CHECK_THAT(err2.text(), Catch::Contains("1 class folder holds only folders") && Catch::Contains("scans (holds a/"));
}

namespace {

// A JPEG with an APP1 EXIF segment right after SOI holding only the orientation tag.
Bytes with_orientation(const Bytes& jpg, int orientation, bool little_endian) {
    const auto u16 = [&](uint32_t v) {
        return little_endian ? Bytes{uint8_t(v), uint8_t(v >> 8)} : Bytes{uint8_t(v >> 8), uint8_t(v)};
    };
    Bytes tiff = little_endian ? Bytes{'I', 'I'} : Bytes{'M', 'M'};
    const auto put = [&](const Bytes& b) { tiff.insert(tiff.end(), b.begin(), b.end()); };
    put(u16(42));
    put(little_endian ? Bytes{8, 0, 0, 0} : Bytes{0, 0, 0, 8});  // IFD0 at offset 8
    put(u16(1));                                                // one entry
    put(u16(0x0112)), put(u16(3));                              // Orientation, SHORT
    put(little_endian ? Bytes{1, 0, 0, 0} : Bytes{0, 0, 0, 1});  // count 1
    put(u16(uint32_t(orientation))), put(u16(0));
    Bytes seg = {'E', 'x', 'i', 'f', 0, 0};
    seg.insert(seg.end(), tiff.begin(), tiff.end());
    const size_t len = seg.size() + 2;
    Bytes out(jpg.begin(), jpg.begin() + 2);  // SOI
    out.insert(out.end(), {0xff, 0xe1, uint8_t(len >> 8), uint8_t(len)});
    out.insert(out.end(), seg.begin(), seg.end());
    out.insert(out.end(), jpg.begin() + 2, jpg.end());
    return out;
}

}  // namespace

TEST_CASE("JPEGs are turned upright as their EXIF orientation says", "[data]") {
    // stb ignores EXIF, so phone photos loaded sideways. The mapping of the 8 orientations was
    // checked against PIL's ImageOps.exif_transpose.
    const int w = 8, h = 4;
    const Bytes jpg = test::jpg_bytes(w, h, 3, test::pattern(w, h, 3, 7));
    const Image plain = decode_image(jpg.data(), jpg.size(), "plain.jpg");
    const auto at = [](const Image& im, int y, int x) {
        const uint8_t* p = &im.pixels[(size_t(y) * size_t(im.width) + size_t(x)) * 3];
        return std::vector<uint8_t>(p, p + 3);
    };
    for (const bool le : {true, false}) {
        const Bytes j6 = with_orientation(jpg, 6, le);
        const Image r6 = decode_image(j6.data(), j6.size(), "six.jpg");  // 90 degrees clockwise
        REQUIRE(r6.width == h);
        REQUIRE(r6.height == w);
        CHECK(at(r6, 0, 0) == at(plain, h - 1, 0));
        CHECK(at(r6, 0, h - 1) == at(plain, 0, 0));
        CHECK(at(r6, w - 1, 0) == at(plain, h - 1, w - 1));
        const Bytes j3 = with_orientation(jpg, 3, le);
        const Image r3 = decode_image(j3.data(), j3.size(), "three.jpg");  // 180 degrees
        REQUIRE(r3.width == w);
        CHECK(at(r3, 0, 0) == at(plain, h - 1, w - 1));
        CHECK(at(r3, 1, 2) == at(plain, h - 2, w - 3));
        const Bytes j8 = with_orientation(jpg, 8, le);
        const Image r8 = decode_image(j8.data(), j8.size(), "eight.jpg");  // 90 degrees anticlockwise
        CHECK(at(r8, 0, 0) == at(plain, 0, w - 1));
    }
    // The real thing, as PIL writes it: 32 wide, 16 high, to be turned 90 degrees clockwise.
    const std::string dir = std::string(HPT_SOURCE_DIR) + "/tests/fuzz/corpus/image/";
    const std::string pil = io::read_file(dir + "exif_orientation6.jpg");
    const Image upright = decode_image(reinterpret_cast<const uint8_t*>(pil.data()), pil.size(), "pil.jpg");
    CHECK(upright.width == 16);
    CHECK(upright.height == 32);
    // A scan decoding with an AC table that no DHT defined made stb read an uninitialised table.
    const std::string bad_scan = io::read_file(dir + "undefined_ac_table.jpg");
    CHECK_THROWS_WITH(decode_image(reinterpret_cast<const uint8_t*>(bad_scan.data()), bad_scan.size(), "u.jpg"),
                      Catch::Contains("a scan uses a Huffman table that no DHT defines"));
    // A malformed EXIF (orientation 9, an IFD past the end) leaves the image as stored.
    const Bytes j9 = with_orientation(jpg, 9, true);
    CHECK(decode_image(j9.data(), j9.size(), "nine.jpg").pixels == plain.pixels);
    Bytes bad = with_orientation(jpg, 6, true);
    bad[2 + 4 + 6 + 4] = 0xff;  // IFD0's offset, low byte: far past the segment
    CHECK(decode_image(bad.data(), bad.size(), "bad.jpg").width == w);
}

namespace {

// A 16-bit grayscale PNG (stb_image_write writes 8-bit only).
Bytes png16_gray(int w, int h, const std::vector<uint16_t>& v) {
    Bytes raw;
    for (int y = 0; y < h; ++y) {
        raw.push_back(0);  // filter: none
        for (int x = 0; x < w; ++x) raw.push_back(uint8_t(v[size_t(y * w + x)] >> 8)), raw.push_back(uint8_t(v[size_t(y * w + x)]));
    }
    uLongf zn = compressBound(uLong(raw.size()));
    Bytes z(zn);
    compress(z.data(), &zn, raw.data(), uLong(raw.size()));
    z.resize(zn);
    Bytes out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const auto chunk = [&](const char* type, const Bytes& body) {
        const uint32_t n = uint32_t(body.size());
        out.insert(out.end(), {uint8_t(n >> 24), uint8_t(n >> 16), uint8_t(n >> 8), uint8_t(n)});
        Bytes tb(type, type + 4);
        tb.insert(tb.end(), body.begin(), body.end());
        out.insert(out.end(), tb.begin(), tb.end());
        const uint32_t crc = uint32_t(crc32(0, tb.data(), uInt(tb.size())));
        out.insert(out.end(), {uint8_t(crc >> 24), uint8_t(crc >> 16), uint8_t(crc >> 8), uint8_t(crc)});
    };
    chunk("IHDR", {0, 0, 0, uint8_t(w), 0, 0, 0, uint8_t(h), 16, 0, 0, 0, 0});
    chunk("IDAT", z);
    chunk("IEND", {});
    return out;
}

}  // namespace

TEST_CASE("16-bit PNGs are rounded to 8 bits, and 12-bit data in them is pointed out", "[data]") {
    // stb's 8-bit load keeps the high byte: 0x00FF gave 0 and 0xFF00 255, where v / 257 rounds
    // to 1 and 254 (the nearest of the 256 levels).
    const Bytes p = png16_gray(3, 1, {0x00FF, 0xFF00, 0xFFFF});
    const Image im = decode_image(p.data(), p.size(), "16.png");
    REQUIRE(im.channels == 1);
    CHECK(im.pixels == std::vector<uint8_t>{1, 254, 255});
    CHECK(im.max16 == 0xFFFF);
    const Bytes dim = png16_gray(2, 1, {4000, 100});
    CHECK(decode_image(dim.data(), dim.size(), "12bit.png").max16 == 4000);
    CHECK(decode_image(dim.data(), dim.size(), "12bit.png").pixels == std::vector<uint8_t>{16, 0});
}

TEST_CASE("photos kept at full size are pointed out, with the load size that avoids it", "[data]") {
    // A few thousand phone photos ran out of memory while loading, with no hint.
    TempDir tmp;
    tmp.write("big/a.png", test::png_bytes(1030, 1030, 1, test::pattern(1030, 1030, 1, 1)));
    {
        test::StderrCapture err;
        load_dataset(tmp.file("big"));
        CHECK_THAT(err.text(), Catch::Contains("1 images of about 1030x1030 kept at full size") &&
                                   Catch::Contains("set run.load_size (or --load-size)"));
    }
    LoadOptions o;
    o.image_size = 64;
    test::StderrCapture err;
    CHECK(load_dataset(tmp.file("big"), o).train.images.shape() == Shape{1, 64, 64, 1});
    CHECK(err.text().find("kept at full size") == std::string::npos);
}
