// Image-file datasets: class folders, flat folders and list files. Every file is decoded (in
// parallel), then the whole dataset is brought to one size and one channel count.
#include <cstdint>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include <unistd.h>

#include "engine/core/error.h"
#include "engine/core/work_progress.h"
#include "engine/data/image_decode.h"
#include "engine/data/io.h"
#include "engine/data/list_file.h"
#include "engine/data/loaders.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fs = std::filesystem;

namespace hpt::data::detail {
namespace {

struct Entry {
    std::string path;
    int64_t label = -1;
    int split = 0;  // 0 train, 1 val, 2 test
};

bool hidden(const fs::path& p) {
    const std::string n = p.filename().string();
    return !n.empty() && n[0] == '.';
}

// An image's name in the dataset (its test carve hashes it): its path relative to the dataset's
// folder, both made absolute and normal first. An absolute path in a list whose own path was
// relative gave "" for every image (one hash, so a test split of one image), and "./a.png" and
// "a.png" were two names for one file.
std::string name_under(const std::string& file, const fs::path& root) {
    const fs::path f = fs::absolute(file).lexically_normal(),
                   r = fs::absolute(root.empty() ? fs::path(".") : root).lexically_normal();  // "l.txt": the current folder
    const fs::path rel = f.lexically_relative(r);
    return (rel.empty() ? f : rel).generic_string();  // outside the folder: the absolute path names it
}

// Files that a folder holds but that are not images by their extension (.tif, .webp, notes):
// counted, so that a warning can say they were left out.
struct Ignored {
    int64_t count = 0;
    std::string first;
};

std::vector<fs::path> sorted_children(const fs::path& dir, bool want_dirs, Ignored* ignored = nullptr) {
    std::vector<fs::path> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        if (hidden(e.path())) continue;
        if (want_dirs ? e.is_directory(ec) : (e.is_regular_file(ec) && has_image_extension(e.path().string()))) {
            out.push_back(e.path());
        } else if (!want_dirs && ignored && !e.is_directory(ec)) {
            if (ignored->count++ == 0) ignored->first = e.path().string();
        }
    }
    if (ec) HPT_THROW("cannot list '", dir.string(), "': ", ec.message());
    std::sort(out.begin(), out.end());
    return out;
}

// Image files under dir at any depth, sorted by path, hidden names skipped. Linked folders inside
// are not followed (counted in `links`): a link to a parent recursed until the system's link limit
// (a class grew 80-fold), and one to a sibling class gave its images a second label.
std::vector<fs::path> images_under(const fs::path& dir, Ignored* ignored, Ignored* links) {
    std::vector<fs::path> out = sorted_children(dir, false, ignored);
    for (const fs::path& sub : sorted_children(dir, true)) {
        std::error_code ec;
        if (fs::is_symlink(sub, ec)) {
            if (links->count++ == 0) links->first = sub.string();
            continue;
        }
        std::vector<fs::path> more = images_under(sub, ignored, links);
        out.insert(out.end(), more.begin(), more.end());
    }
    std::sort(out.begin(), out.end());
    return out;
}

int split_of(const std::string& dir_name) {
    const std::string n = lower(dir_name);
    if (n == "train" || n == "training") return 0;
    if (n == "val" || n == "valid" || n == "validation") return 1;
    if (n == "test" || n == "testing") return 2;  // Training/ and Testing/ became two classes
    return -1;
}

struct Decoded {
    Image image;
    std::string error;
};

// Kept at full size, a folder of photos needs their decoded bytes and about as much again while
// the splits are assembled: a few thousand phone photos ran out of memory without a hint. The
// first image's header gives the estimate.
void warn_if_too_large(const std::vector<Entry>& entries, const std::string& where, int load_size) {
    if (load_size > 0 || entries.empty()) return;
    int w = 0, h = 0;
    if (!image_dimensions(entries[0].path, w, h)) return;
    const double gib = double(entries.size()) * w * h * 3 * 2 / double(1ull << 30);
    const double ram = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE)) / double(1ull << 30);
    if (gib < 0.5 * ram && w * h <= 1024 * 1024) return;
    std::fprintf(stderr, "warning: %s: %zu images of about %dx%d kept at full size need about %.1f GiB while loading "
                 "(this machine has %.1f GiB), and training shrinks them anyway; set run.load_size (or --load-size) "
                 "to decode them smaller\n", where.c_str(), entries.size(), w, h, gib, ram);
}

// Decodes every entry and assembles the splits. Unreadable files are skipped (counted in one
// warning that names the first few) or, under strict, the first is an error.
Dataset assemble(const std::vector<Entry>& entries, const std::string& where, const LoadOptions& opt) {
    const int64_t n = int64_t(entries.size());
    std::vector<Decoded> dec(static_cast<size_t>(n));
    const int size = int(opt.image_size);
    warn_if_too_large(entries, where, size);
    // 2000 photos took 21 s here without a word; the first thread reports what all have done.
    WorkProgress progress("decoding the images of " + where, n, "images");
    std::atomic<int64_t> decoded{0};
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t i = 0; i < n; ++i) {
#ifdef _OPENMP
        if (omp_get_thread_num() == 0)
#endif
            progress.set(decoded.load());
        decoded.fetch_add(1);
        Decoded& d = dec[size_t(i)];
        try {
            const std::vector<uint8_t> bytes = read_file(entries[size_t(i)].path);
            d.image = decode_image(bytes.data(), bytes.size(), entries[size_t(i)].path);
            if (size > 0) d.image = resize_image(d.image, size, size);
        } catch (const std::exception& e) {
            d.error = e.what();
            if (d.error.empty()) d.error = "unreadable";
        }
    }
    progress.set(n);
    progress.finish();
    int64_t skipped = 0, dim = 0;
    const Decoded* first_bad = nullptr;
    const Decoded* first_good = nullptr;
    const Decoded* first_dim = nullptr;
    int channels = 1;
    for (int64_t i = 0; i < n; ++i) {
        const Decoded& d = dec[size_t(i)];
        if (!d.error.empty()) {
            if (opt.strict) HPT_THROW(where, ": unreadable image (strict): ", d.error);
            if (!first_bad) first_bad = &d;
            ++skipped;
            continue;
        }
        if (!first_good) first_good = &d;
        if (d.image.channels == 3) channels = 3;
        // 12-bit data in 16-bit files (microscopes, scanners) rounds to 0-16 of 255: nearly black.
        if (d.image.max16 >= 0 && d.image.max16 < 4096 && dim++ == 0) first_dim = &d;
        if (d.image.width != first_good->image.width || d.image.height != first_good->image.height)
            HPT_THROW(where, ": images differ in size: ", entries[size_t(first_good - dec.data())].path, " is ",
                      first_good->image.width, "x", first_good->image.height, ", ", entries[size_t(i)].path, " is ",
                      d.image.width, "x", d.image.height,
                      "; resize them on load (run.load_size, or --load-size of data, eval and embed)");
    }
    if (dim > 0)
        std::fprintf(stderr, "warning: %lld 16-bit image%s in %s use%s at most 12 bits (first: %s, largest value %d of 65535) "
                     "and load%s nearly black; scale them to the 16-bit range\n", static_cast<long long>(dim),
                     dim == 1 ? "" : "s", where.c_str(), dim == 1 ? "s" : "",
                     entries[size_t(first_dim - dec.data())].path.c_str(), first_dim->image.max16, dim == 1 ? "s" : "");
    if (!first_good) HPT_THROW(where, ": none of the ", n, " image files could be read (first: ", first_bad->error, ")");
    if (skipped > 0) {
        // Each error already names its file: "FILE: reason [source:line]". The first few are
        // listed, so that a handful of bad files can be found without --strict runs one by one.
        constexpr int64_t kListed = 5;
        std::fprintf(stderr, "warning: skipped %lld unreadable image%s in %s:\n", (long long)skipped, skipped == 1 ? "" : "s",
                     where.c_str());
        int64_t listed = 0;
        for (const Decoded& d : dec)
            if (!d.error.empty() && listed++ < kListed) std::fprintf(stderr, "  %s\n", d.error.c_str());
        if (skipped > kListed) std::fprintf(stderr, "  ... and %lld more\n", (long long)(skipped - kListed));
    }
    const int64_t h = first_good->image.height, w = first_good->image.width;

    Dataset ds;
    ImageSet* out[3] = {&ds.train, &ds.val, &ds.test};
    std::error_code ec;
    const fs::path root = fs::is_directory(where, ec) ? fs::path(where) : fs::path(where).parent_path();
    for (int s = 0; s < 3; ++s) {
        int64_t count = 0;
        bool listed = false;
        for (int64_t i = 0; i < n; ++i)
            if (entries[size_t(i)].split == s) listed = true, count += dec[size_t(i)].error.empty();
        if (!listed) continue;
        if (count == 0) HPT_THROW(where, ": no readable images in the ", s == 0 ? "train" : s == 1 ? "val" : "test", " split");
        // Each image goes straight into the split's tensor and is freed (no staging copy).
        ImageSet& set = *out[s];
        set.images = empty({count, h, w, channels}, DType::u8);
        set.labels = empty({count}, DType::i64);
        uint8_t* px = set.images.data<uint8_t>();
        int64_t* labels = set.labels.data<int64_t>();
        const size_t bytes = size_t(h) * size_t(w) * size_t(channels);
        int64_t k = 0;
        for (int64_t i = 0; i < n; ++i) {
            Decoded& d = dec[size_t(i)];
            if (entries[size_t(i)].split != s || !d.error.empty()) continue;
            const Image img = channels == 3 && d.image.channels == 1 ? gray_to_rgb(d.image) : std::move(d.image);
            std::memcpy(px + size_t(k) * bytes, img.pixels.data(), bytes);
            labels[k++] = entries[size_t(i)].label;
            set.names.push_back(name_under(entries[size_t(i)].path, root));
            d.image = Image();
        }
    }
    ds.skipped_images = skipped;
    return ds;
}

// A folder of class subfolders (labeled) or of images (unlabeled). `classes` maps names to labels.
void collect(const fs::path& dir, int split, const std::map<std::string, int64_t>& classes, std::vector<Entry>& out,
             Ignored& ignored, Ignored& links, Ignored& nested) {
    const std::vector<fs::path> subdirs = sorted_children(dir, true), files = sorted_children(dir, false, &ignored);
    if (!subdirs.empty() && !files.empty())
        HPT_THROW("'", dir.string(), "' mixes image files (", files[0].filename().string(), ") and class folders (",
                  subdirs[0].filename().string(), ")");
    size_t before = out.size();
    if (subdirs.empty()) {
        for (const fs::path& f : files) out.push_back({f.string(), -1, split});
    } else {
        for (const fs::path& c : subdirs) {
            // A class folder of folders only may be a level above the classes (a split name we do
            // not know, a dataset's own folder): their images all take its label, and the user is told.
            const std::vector<fs::path> inner = sorted_children(c, true);
            if (!inner.empty() && sorted_children(c, false).empty() && nested.count++ == 0)
                nested.first = c.string() + " (holds " + inner[0].filename().string() + "/ ...)";
            for (const fs::path& f : images_under(c, &ignored, &links))
                out.push_back({f.string(), classes.at(c.filename().string()), split});
        }
    }
    if (out.size() == before) HPT_THROW("'", dir.string(), "' holds no .png, .jpg, .jpeg or .bmp images");
}

}  // namespace

Dataset load_image_folder(const std::string& path, const LoadOptions& opt) {
    const fs::path root(path);
    std::error_code ec;
    if (!fs::is_directory(root, ec)) HPT_THROW("'", path, "' is not a directory (expected an image folder)");
    const std::vector<fs::path> subdirs = sorted_children(root, true);
    std::vector<std::pair<fs::path, int>> split_dirs;
    for (const fs::path& d : subdirs)
        if (split_of(d.filename().string()) >= 0) split_dirs.push_back({d, split_of(d.filename().string())});
    if (!split_dirs.empty() && split_dirs.size() != subdirs.size()) {
        std::string other;
        for (const fs::path& d : subdirs)
            if (split_of(d.filename().string()) < 0 && other.empty()) other = d.filename().string();
        HPT_THROW("'", path, "' mixes split folders (train/val/test) with other folders (", other, ")");
    }
    if (split_dirs.empty()) split_dirs.push_back({root, 0});
    std::set<int> seen;
    for (const auto& [d, s] : split_dirs)
        if (!seen.insert(s).second) HPT_THROW("'", path, "' has two folders for one split (e.g. val and valid)");

    // One class list over all splits, so a class has the same label everywhere. Two class folders
    // that are one folder (a link) would give its images two labels.
    std::set<std::string> names;
    std::map<fs::path, std::string> real;
    for (const auto& [d, s] : split_dirs)
        for (const fs::path& c : sorted_children(d, true)) {
            names.insert(c.filename().string());
            const fs::path canon = fs::weakly_canonical(c, ec);
            const auto [it, fresh] = real.emplace(canon, c.string());
            HPT_CHECK(fresh || ec, "'", c.string(), "' and '", it->second,
                      "' are the same folder (a link): its images would carry two class labels");
        }
    std::map<std::string, int64_t> classes;
    for (const std::string& nm : names) classes.emplace(nm, int64_t(classes.size()));

    std::vector<Entry> entries;
    Ignored ignored, links, nested;
    for (const auto& [d, s] : split_dirs) collect(d, s, classes, entries, ignored, links, nested);
    if (links.count > 0)
        std::fprintf(stderr, "warning: %s: left out %lld linked folder%s inside class folders (first: %s); link whole class "
                     "folders instead\n", path.c_str(), static_cast<long long>(links.count), links.count == 1 ? "" : "s",
                     links.first.c_str());
    if (nested.count > 0)
        std::fprintf(stderr, "warning: %s: %lld class folder%s hold%s only folders, whose images all take the class "
                     "folder's label (first: %s); if those folders are the classes, give their parent as the dataset\n",
                     path.c_str(), static_cast<long long>(nested.count), nested.count == 1 ? "" : "s",
                     nested.count == 1 ? "s" : "", nested.first.c_str());
    if (ignored.count > 0)
        std::fprintf(stderr, "warning: left out %lld file%s of %s that %s not .png, .jpg, .jpeg or .bmp (first: %s)\n",
                     static_cast<long long>(ignored.count), ignored.count == 1 ? "" : "s", path.c_str(),
                     ignored.count == 1 ? "is" : "are", ignored.first.c_str());
    // Class folders without an image (empty, .tif only, a zip's __MACOSX) would be classes that
    // no image has: left out, and said.
    std::vector<int64_t> used(classes.size(), 0);
    for (const Entry& e : entries)
        if (e.label >= 0) used[size_t(e.label)] = 1;
    std::vector<int64_t> relabel(classes.size(), -1);
    std::vector<std::string> kept, dropped;
    for (const auto& [nm, label] : classes) {
        if (used[size_t(label)]) {
            relabel[size_t(label)] = int64_t(kept.size());
            kept.push_back(nm);
        } else {
            dropped.push_back(nm);
        }
    }
    if (!dropped.empty()) {
        std::string list;
        for (const std::string& d : dropped) list += (list.empty() ? "" : ", ") + d;
        std::fprintf(stderr, "warning: %s: class folder%s without images left out: %s\n", path.c_str(),
                     dropped.size() == 1 ? "" : "s", list.c_str());
        for (Entry& e : entries)
            if (e.label >= 0) e.label = relabel[size_t(e.label)];
    }
    // A class with val or test images and no training image cannot be learnt, and one spelled
    // otherwise than in train ("cat" beside "Cat") silently became a class of its own.
    std::vector<int64_t> in_train(kept.size(), 0);
    for (const Entry& e : entries)
        if (e.label >= 0 && e.split == 0) in_train[size_t(e.label)] = 1;
    std::string untrained;
    for (size_t c = 0; c < kept.size(); ++c)
        if (!in_train[c]) untrained += (untrained.empty() ? "" : ", ") + kept[c];
    if (split_dirs.size() > 1 && !untrained.empty())
        std::fprintf(stderr, "warning: %s: class%s %s ha%s val or test images but no training images (class folders "
                     "are matched by their exact names)\n", path.c_str(), untrained.find(',') == std::string::npos ? "" : "es",
                     untrained.c_str(), untrained.find(',') == std::string::npos ? "s" : "ve");
    Dataset ds = assemble(entries, path, opt);
    ds.class_names = kept;
    return ds;
}

Dataset load_list_file(const std::string& path, const LoadOptions& opt) {
    const std::vector<uint8_t> bytes = read_file(path);
    const fs::path base = fs::path(path).parent_path();
    std::vector<Entry> entries;
    for (ListEntry& le : parse_list_file(bytes.data(), bytes.size(), path)) {
        Entry en;
        const auto resolve = [&](const std::string& written) {
            const fs::path p(written);
            return (p.is_absolute() ? p : base / p).string();
        };
        en.path = resolve(le.path);
        // "x.png -1" or "x.png cat" reads as one path (paths may hold blanks); when that file does
        // not exist but x.png does, the last word was meant as a label.
        const size_t sp = le.path.find_last_of(" \t");
        std::error_code ec;
        if (le.label < 0 && sp != std::string::npos && !fs::exists(en.path, ec) &&
            fs::is_regular_file(resolve(le.path.substr(0, le.path.find_last_not_of(" \t", sp) + 1)), ec))
            HPT_THROW(path, ":", le.line, ": label '", le.path.substr(sp + 1),
                      "' is not a whole number (labels are 0, 1, 2, ...: number the classes)");
        en.label = le.label;
        entries.push_back(std::move(en));
    }
    return assemble(entries, path, opt);
}

}  // namespace hpt::data::detail
