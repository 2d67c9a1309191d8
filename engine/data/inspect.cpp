#include "engine/data/inspect.h"

#include <cstdint>
#include <iomanip>
#include <sstream>

namespace hpt::data {

namespace {

std::string counts_line(const ImageSet& s, int64_t classes) {
    if (s.size() == 0) return "-";
    const std::vector<int64_t> c = class_counts(s);
    std::ostringstream os;
    int64_t labeled = 0;
    for (int64_t k = 0; k < classes; ++k) {
        const int64_t n = k < int64_t(c.size()) ? c[size_t(k)] : 0;
        labeled += n;
        os << (k ? " " : "") << n;
    }
    if (labeled < s.size()) os << "  (+" << s.size() - labeled << " unlabeled)";
    return os.str();
}

}  // namespace

std::string inspect_report(const std::string& path, const LoadOptions& opt) {
    const Format detected = opt.format == Format::automatic ? detect_format(path) : opt.format;
    const Dataset ds = load_dataset(path, opt);
    std::ostringstream os;
    os << "dataset  " << path << "\n";
    os << "format   " << format_name(detected) << (opt.format == Format::automatic ? " (detected)" : " (forced)")
       << "\n";
    os << "splits   train " << ds.train.size() << ", val " << ds.val.size() << ", test " << ds.test.size() << "\n";
    if (ds.test_carved)
        os << "         test carved from train: " << (ds.test.names.empty() ? "" : "about ") << std::setprecision(3)
           << 100.0 * opt.test_fraction << "% ("
           << (ds.test.names.empty() ? "a fixed choice" : "chosen by a hash of each file's path")
           << ": the same images in every run)\n";
    if (ds.val_carved) {
        os << "         val carved from train: " << std::setprecision(3) << 100.0 * opt.val_fraction
           << "% with seed " << opt.seed << "\n";
    } else {
        os << "         val " << (ds.val.size() ? "from the dataset's own split" : "empty") << "\n";
    }
    const ImageSet& any = ds.train.size() ? ds.train : (ds.val.size() ? ds.val : ds.test);
    if (any.size()) {
        const int64_t c = any.images.size(3);
        os << "images   " << any.images.size(1) << " x " << any.images.size(2) << " x " << c << " ("
           << (c == 1 ? "grayscale" : "RGB") << "; height x width x channels), u8\n";
    }
    const int64_t classes = ds.train.num_classes ? ds.train.num_classes : std::max(ds.val.num_classes, ds.test.num_classes);
    os << "classes  " << classes;
    if (!ds.class_names.empty()) {
        os << ":";
        for (const std::string& n : ds.class_names) os << " " << n;
    }
    os << "\n";
    if (classes > 0) {
        os << "  train  " << counts_line(ds.train, classes) << "\n";
        os << "  val    " << counts_line(ds.val, classes) << "\n";
        os << "  test   " << counts_line(ds.test, classes) << "\n";
    }
    if (ds.train.size()) {
        const auto [mean, sd] = channel_mean_std(ds.train);
        os << std::fixed << std::setprecision(4) << "mean     ";
        for (double m : mean) os << " " << m;
        os << "   (train, [0, 1] units)\nstd      ";
        bool constant = false;
        for (double s : sd) os << " " << s, constant |= s < kConstantChannelStd;
        os << (constant ? "   (a constant channel is normalised with std 1)" : "") << "\n";
    } else {
        os << "mean/std  - (no training split)\n";
    }
    if (ds.skipped_images) os << "skipped  " << ds.skipped_images << " unreadable image files\n";
    return os.str();
}

}  // namespace hpt::data
