// IDX datasets: a directory in the MNIST layout, or one images file with its labels file beside it.
#include <cstdint>
#include <filesystem>
#include <map>

#include "engine/core/error.h"
#include "engine/data/idx.h"
#include "engine/data/io.h"
#include "engine/data/loaders.h"

namespace fs = std::filesystem;

namespace hpt::data::detail {
namespace {

struct SplitFiles {
    std::string images, labels;
};

ImageSet load_pair(const SplitFiles& f) {
    const IdxArray img = read_idx(f.images);
    const std::vector<int64_t>& d = img.dims;
    int64_t c = 1;
    if (d.size() == 4 && (d[3] == 1 || d[3] == 3)) {
        c = d[3];
    } else if (d.size() != 3) {
        HPT_THROW(f.images, ": IDX images must have dimensions [N, H, W] or [N, H, W, 1|3], not ", shape_str(d),
                  d.size() == 1 ? " (is this a labels file?)" : "");
    }
    std::vector<int64_t> labels(size_t(d[0]), -1);
    if (!f.labels.empty()) {
        const IdxArray lab = read_idx(f.labels);
        if (lab.dims.size() != 1 && !(lab.dims.size() == 2 && lab.dims[1] == 1))
            HPT_THROW(f.labels, ": IDX labels must have dimensions [N], not ", shape_str(lab.dims));
        if (lab.dims[0] != d[0])
            HPT_THROW("IDX image/label count mismatch: ", f.images, " holds ", d[0], " images but ", f.labels,
                      " holds ", lab.dims[0], " labels");
        for (size_t i = 0; i < labels.size(); ++i) labels[i] = lab.data[i];
    }
    return make_set(img.data.data(), d[0], d[1], d[2], c, labels);
}

// Raw files win over .gz twins (they are what gunzip made); two names of one kind are ambiguous.
void offer(std::string& slot, const fs::path& p) {
    const bool gz = lower(p.extension().string()) == ".gz";
    if (slot.empty()) {
        slot = p.string();
        return;
    }
    const bool slot_gz = lower(fs::path(slot).extension().string()) == ".gz";
    if (slot_gz && !gz) slot = p.string();
    else if (slot_gz == gz) HPT_THROW("ambiguous IDX files: ", slot, " and ", p.string());
}

}  // namespace

IdxName parse_idx_name(const std::string& file_name) {
    std::string n = lower(file_name);
    if (n.size() > 3 && n.compare(n.size() - 3, 3, ".gz") == 0) n.resize(n.size() - 3);
    IdxName r;
    for (const char* split : {"train", "t10k", "test"})
        for (const char* kind : {"-images", "-labels"}) {
            const std::string prefix = std::string(split) + kind;
            if (n.compare(0, prefix.size(), prefix) == 0 && n.find("idx", prefix.size()) != std::string::npos) {
                r.ok = true;
                r.test = split[0] == 't' && split[1] != 'r';
                r.images = kind[1] == 'i';
            }
        }
    return r;
}

Dataset load_idx(const std::string& path) {
    SplitFiles files[2];  // train, test
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
        for (const auto& e : fs::directory_iterator(path, ec)) {
            if (!e.is_regular_file(ec)) continue;
            const IdxName n = parse_idx_name(e.path().filename().string());
            if (!n.ok) continue;
            SplitFiles& f = files[n.test];
            offer(n.images ? f.images : f.labels, e.path());
        }
        if (ec) HPT_THROW("cannot list '", path, "': ", ec.message());
    } else {
        // One images file; its labels file is the same name with images -> labels, idx3 -> idx1.
        const fs::path p(path);
        const std::string name = p.filename().string();
        const IdxName n = parse_idx_name(name);
        if (n.ok && !n.images)
            HPT_THROW(path, " is an IDX labels file; pass its images file or the directory");
        std::string lab = name;
        for (const auto& [from, to] : {std::pair<std::string, std::string>{"images", "labels"}, {"idx3", "idx1"}}) {
            const size_t at = lab.find(from);
            if (at != std::string::npos) lab.replace(at, from.size(), to);
        }
        SplitFiles& f = files[n.ok && n.test];
        f.images = path;
        // The labels may be compressed when the images are not, or the other way round.
        std::string bare = lab;
        if (lower(bare).size() > 3 && lower(bare).compare(bare.size() - 3, 3, ".gz") == 0) bare.resize(bare.size() - 3);
        for (const std::string& cand : {lab, bare, bare + ".gz"}) {
            const fs::path lp = p.parent_path() / cand;
            if (cand != name && f.labels.empty() && fs::is_regular_file(lp, ec)) f.labels = lp.string();
        }
    }
    Dataset ds;
    ImageSet* out[2] = {&ds.train, &ds.test};
    for (int s = 0; s < 2; ++s) {
        const SplitFiles& f = files[s];
        if (f.images.empty() && !f.labels.empty())
            HPT_THROW(path, ": IDX labels file ", f.labels, " has no images file beside it");
        if (!f.images.empty()) *out[s] = load_pair(f);
    }
    if (files[0].images.empty() && files[1].images.empty())
        HPT_THROW(path, ": no IDX image files (train-images-idx3-ubyte[.gz] or t10k-images-idx3-ubyte[.gz])");
    return ds;
}

}  // namespace hpt::data::detail
