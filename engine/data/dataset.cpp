#include "engine/data/dataset.h"

#include <cstdint>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <tuple>

#include "engine/data/digits_csv.h"
#include "engine/data/gzip.h"
#include "engine/data/idx.h"
#include "engine/data/image_decode.h"
#include "engine/data/io.h"
#include "engine/data/loaders.h"
#include "engine/data/npy.h"
#include "engine/data/zip.h"

namespace fs = std::filesystem;

namespace hpt::data {
namespace detail {

ImageSet make_set(const uint8_t* pixels, int64_t n, int64_t h, int64_t w, int64_t c, const std::vector<int64_t>& labels) {
    HPT_CHECK(int64_t(labels.size()) == n, "make_set: ", labels.size(), " labels for ", n, " images");
    ImageSet s;
    s.images = empty({n, h, w, c}, DType::u8);
    if (n * h * w * c > 0) std::memcpy(s.images.data_ptr(), pixels, size_t(n * h * w * c));
    s.labels = empty({n}, DType::i64);
    if (n > 0) std::memcpy(s.labels.data_ptr(), labels.data(), size_t(n) * sizeof(int64_t));
    return s;
}

// The digits CSV has no splits: load_dataset carves its test and val splits.
Dataset load_digits_csv(const std::string& path, const LoadOptions&) {
    const std::vector<uint8_t> bytes = read_file(path);
    const DigitsCsv d = parse_digits_csv(bytes.data(), bytes.size(), path);
    Dataset ds;
    ds.train = make_set(d.pixels.data(), d.count, 8, 8, 1, d.labels);
    return ds;
}

}  // namespace detail

namespace {

uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// Straight into the new set's tensor: a zeroed staging vector and a second copy made
// page faults the larger part of loading a big folder (perf: clear_page 29%).
ImageSet gather(const ImageSet& s, const std::vector<int64_t>& rows) {
    const Tensor img = s.images.contiguous();
    const int64_t row = img.numel() / std::max<int64_t>(img.size(0), 1), k = int64_t(rows.size());
    ImageSet out;
    out.images = empty({k, img.size(1), img.size(2), img.size(3)}, DType::u8);
    out.labels = empty({k}, DType::i64);
    const uint8_t* src = img.data<uint8_t>();
    const int64_t* all = s.labels.contiguous().data<int64_t>();
    uint8_t* dst = k ? out.images.data<uint8_t>() : nullptr;
    int64_t* lab = k ? out.labels.data<int64_t>() : nullptr;
    for (int64_t i = 0; i < k; ++i) {
        std::memcpy(dst + i * row, src + rows[size_t(i)] * row, size_t(row));
        lab[i] = all[rows[size_t(i)]];
    }
    out.num_classes = s.num_classes;
    if (!s.names.empty())
        for (const int64_t r : rows) out.names.push_back(s.names[size_t(r)]);
    return out;
}

// Gives undefined splits 0 images of the dataset's image shape, and every split the dataset's
// class count (max label + 1 over all splits, unless the loader knew it from class folders).
void finish_splits(Dataset& ds) {
    ImageSet* splits[] = {&ds.train, &ds.val, &ds.test};
    const ImageSet* ref = nullptr;
    int64_t classes = int64_t(ds.class_names.size());
    for (ImageSet* s : splits) {
        if (!s->images.defined()) continue;
        if (!ref) ref = s;
        for (int64_t v : s->labels.to_vector<int64_t>()) classes = std::max(classes, v + 1);
    }
    // Classes are numbered 0..C-1 and every count, probe output and vote is per class: a stray
    // label of 999999999 made `data inspect` list a billion counts (12 GB before it was stopped).
    constexpr int64_t kMaxClasses = int64_t(1) << 16;
    HPT_CHECK(classes <= kMaxClasses, ds.path, ": a label of ", classes - 1, "; class labels are 0 to ",
              kMaxClasses - 1, " (number the classes from 0)");
    HPT_CHECK(ref, ds.path, ": the dataset has no images");
    for (ImageSet* s : splits)
        if (s->images.defined())
            for (int k = 1; k < 4; ++k)
                HPT_CHECK(s->images.size(k) == ref->images.size(k), ds.path, ": splits differ in image shape: ",
                          shape_str(ref->images.shape()), " vs ", shape_str(s->images.shape()));
    for (ImageSet* s : splits) {
        if (!s->images.defined()) {
            s->images = empty({0, ref->images.size(1), ref->images.size(2), ref->images.size(3)}, DType::u8);
            s->labels = empty({0}, DType::i64);
        }
        s->num_classes = classes;
    }
}

bool is_text(const std::vector<uint8_t>& head) {
    for (uint8_t b : head)
        if (b == 0 || (b < 0x20 && b != '\n' && b != '\r' && b != '\t')) return false;
    return true;
}

}  // namespace

const char* format_name(Format f) {
    switch (f) {
        case Format::automatic: return "auto";
        case Format::idx: return "idx";
        case Format::npz: return "npz";
        case Format::digits_csv: return "digits_csv";
        case Format::image_folder: return "image_folder";
        case Format::list_file: return "list_file";
    }
    return "?";
}

Format parse_format(const std::string& name) {
    for (Format f : {Format::automatic, Format::idx, Format::npz, Format::digits_csv, Format::image_folder,
                     Format::list_file})
        if (name == format_name(f)) return f;
    if (name == "automatic" || name.empty()) return Format::automatic;
    HPT_THROW("unknown dataset format '", name, "' (auto, idx, npz, digits_csv, image_folder or list_file)");
}

Format detect_format(const std::string& path) {
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (ec || !fs::exists(st)) HPT_THROW("dataset path '", path, "' does not exist");
    if (fs::is_directory(st)) {
        int npz = 0;
        for (const auto& e : fs::directory_iterator(path, ec)) {
            if (!e.is_regular_file(ec)) continue;
            const std::string name = e.path().filename().string();
            if (detail::parse_idx_name(name).ok) return Format::idx;
            npz += lower(e.path().extension().string()) == ".npz";
        }
        if (ec) HPT_THROW("cannot list '", path, "': ", ec.message());
        if (npz > 1) HPT_THROW("'", path, "' holds ", npz, " .npz files; pass the one to load");
        return npz == 1 ? Format::npz : Format::image_folder;
    }
    // 64 KiB of a gzip file is enough to inflate the few bytes the sniffers look at.
    const std::vector<uint8_t> head = read_file_head(path, 1 << 16);
    const uint8_t* p = head.data();
    const size_t n = head.size();
    if (n == 0) HPT_THROW("'", path, "' is empty");
    if (is_zip(p, n)) return Format::npz;
    if (looks_like_idx(p, n)) return Format::idx;
    if (looks_like_digits_csv(p, n)) return Format::digits_csv;
    if (is_gzip(p, n)) HPT_THROW("'", path, "' is gzip data that is neither an IDX file nor a digits CSV");
    if (is_npy(p, n)) HPT_THROW("'", path, "' is a single .npy array; a dataset needs an .npz with images and labels");
    if (looks_like_image(p, n)) HPT_THROW("'", path, "' is a single image, not a dataset");
    if (is_text(head)) return Format::list_file;
    HPT_THROW("'", path, "': unrecognised dataset format (not IDX, .npz, digits CSV, image folder or list file)");
}

Dataset load_dataset(const std::string& path, const LoadOptions& opt) {
    for (const double f : {opt.val_fraction, opt.test_fraction})
        HPT_CHECK(f >= 0 && f < 1, "load_dataset: val_fraction ", opt.val_fraction, " and test_fraction ",
                  opt.test_fraction, " must be in [0, 1)");
    HPT_CHECK(opt.image_size >= 0 && opt.image_size <= 16384, "load_dataset: image_size ", opt.image_size,
              " must be in [0, 16384]");
    const Format f = opt.format == Format::automatic ? detect_format(path) : opt.format;
    std::error_code ec;
    if (!fs::exists(path, ec)) HPT_THROW("dataset path '", path, "' does not exist");
    Dataset ds;
    switch (f) {
        case Format::idx: ds = detail::load_idx(path); break;
        case Format::npz: ds = detail::load_npz(path); break;
        case Format::digits_csv: ds = detail::load_digits_csv(path, opt); break;
        case Format::image_folder: ds = detail::load_image_folder(path, opt); break;
        case Format::list_file: ds = detail::load_list_file(path, opt); break;
        case Format::automatic: HPT_THROW("unreachable");
    }
    ds.path = path;
    ds.format = format_name(f);
    finish_splits(ds);
    // A labeled dataset without a test split (a class folder, a labeled list, the digits) could
    // not be evaluated at all. The carve's seed is fixed, not opt.seed, so that every run and every
    // `eval` of the dataset tests on the same images, which pretraining never sees.
    const std::vector<int64_t> train_labels = ds.train.labels.to_vector<int64_t>();
    const bool labeled = !train_labels.empty() &&
                         std::all_of(train_labels.begin(), train_labels.end(), [](int64_t v) { return v >= 0; });
    if (ds.test.size() == 0 && labeled && ds.train.size() > 1 && opt.test_fraction > 0) {
        constexpr uint64_t kTestSeed = 0x7e57da7a;
        std::tie(ds.train, ds.test) = ds.train.names.empty() ? carve(ds.train, opt.test_fraction, kTestSeed)
                                                             : carve_by_name(ds.train, opt.test_fraction);
        ds.test_carved = ds.test.size() > 0;
    }
    if (ds.val.size() == 0 && ds.train.size() > 1 && opt.val_fraction > 0) {
        auto [rest, val] = carve(ds.train, opt.val_fraction, opt.seed);
        if (val.size() > 0) {
            ds.train = std::move(rest);
            ds.val = std::move(val);
            ds.val_carved = true;
        }
    }
    return ds;
}

std::pair<ImageSet, ImageSet> carve_by_name(const ImageSet& set, double fraction) {
    HPT_CHECK(fraction >= 0 && fraction <= 1 && set.names.size() == size_t(set.size()), "carve_by_name: fraction ",
              fraction, ", ", set.names.size(), " names for ", set.size(), " images");
    const int64_t n = set.size();
    std::vector<uint64_t> hash(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a, then a splitmix64 finish to spread short names
        for (const char c : set.names[size_t(i)]) h = (h ^ uint8_t(c)) * 0x100000001b3ull;
        hash[size_t(i)] = splitmix64(h);
    }
    const double cut = fraction * 18446744073709551616.0;  // 2^64
    // Few images may fall under the cut by chance: the lowest hash is carved then, and the highest
    // always stays, so that both sides have an image when the set has two.
    const auto [lo, hi] = std::minmax_element(hash.begin(), hash.end());
    std::vector<int64_t> carved, rest;
    for (int64_t i = 0; i < n; ++i) {
        const bool c = (double(hash[size_t(i)]) < cut || hash.begin() + i == lo) && hash.begin() + i != hi;
        (c ? carved : rest).push_back(i);
    }
    return {gather(set, rest), gather(set, carved)};
}

std::pair<ImageSet, ImageSet> carve(const ImageSet& set, double fraction, uint64_t seed) {
    HPT_CHECK(fraction >= 0 && fraction <= 1, "carve: fraction ", fraction, " must be in [0, 1]");
    const int64_t n = set.size();
    int64_t k = std::llround(fraction * double(n));
    k = std::min(k, std::max<int64_t>(n - 1, 0));  // the rest keeps at least one image
    // Partial Fisher-Yates with our own generator: std::shuffle differs between standard libraries.
    std::vector<int64_t> perm(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) perm[size_t(i)] = i;
    uint64_t state = seed;
    for (int64_t i = 0; i < k; ++i) {
        const uint64_t span = uint64_t(n - i);
        const int64_t j = i + int64_t((unsigned __int128)splitmix64(state) * span >> 64);
        std::swap(perm[size_t(i)], perm[size_t(j)]);
    }
    std::vector<int64_t> carved(perm.begin(), perm.begin() + k), rest(perm.begin() + k, perm.end());
    std::sort(carved.begin(), carved.end());
    std::sort(rest.begin(), rest.end());
    return {gather(set, rest), gather(set, carved)};
}

std::vector<int64_t> class_counts(const ImageSet& set) {
    std::vector<int64_t> counts(size_t(std::max<int64_t>(set.num_classes, 0)), 0);
    for (int64_t v : set.labels.to_vector<int64_t>()) {
        if (v < 0) continue;
        if (v >= int64_t(counts.size())) counts.resize(size_t(v + 1), 0);
        ++counts[size_t(v)];
    }
    return counts;
}

std::pair<std::vector<double>, std::vector<double>> channel_mean_std(const ImageSet& set) {
    const Tensor img = set.images.contiguous();
    HPT_CHECK(img.defined() && img.dim() == 4 && img.dtype() == DType::u8,
              "channel_mean_std: expected u8 images [N, H, W, C]");
    HPT_CHECK(img.numel() > 0, "channel_mean_std: no images");
    const int64_t c = img.size(3), pixels = img.numel() / c;
    // Integer sums are exact: 255^2 x 2^40 pixels still fits in 64 bits.
    std::vector<uint64_t> sum(size_t(c), 0), sq(size_t(c), 0);
    const uint8_t* p = img.data<uint8_t>();
    for (int64_t i = 0; i < pixels; ++i)
        for (int64_t ch = 0; ch < c; ++ch) {
            const uint64_t v = p[i * c + ch];
            sum[size_t(ch)] += v;
            sq[size_t(ch)] += v * v;
        }
    std::vector<double> mean(static_cast<size_t>(c)), stdev(static_cast<size_t>(c));
    for (int64_t ch = 0; ch < c; ++ch) {
        const double m = double(sum[size_t(ch)]) / double(pixels);
        const double var = std::max(0.0, double(sq[size_t(ch)]) / double(pixels) - m * m);
        mean[size_t(ch)] = m / 255.0;
        stdev[size_t(ch)] = std::sqrt(var) / 255.0;
    }
    return {mean, stdev};
}

std::pair<std::vector<double>, std::vector<double>> normalization_mean_std(const ImageSet& set) {
    auto [mean, sd] = channel_mean_std(set);
    for (double& s : sd)
        if (s < kConstantChannelStd) s = 1.0;
    return {mean, sd};
}

}  // namespace hpt::data
