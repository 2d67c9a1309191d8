// MedMNIST-style .npz datasets: a ZIP of .npy arrays named {train,val,test}_{images,labels}.
#include <cstdint>
#include <filesystem>
#include <map>

#include "engine/core/error.h"
#include "engine/data/io.h"
#include "engine/data/loaders.h"
#include "engine/data/npy.h"
#include "engine/data/zip.h"

namespace fs = std::filesystem;

namespace hpt::data::detail {
namespace {

// Member key (name without ".npy") -> (split 0..2, images?).
bool member_role(const std::string& key, int* split, bool* images) {
    static const std::map<std::string, std::pair<int, bool>> roles = {
        {"train_images", {0, true}}, {"train_labels", {0, false}}, {"val_images", {1, true}},
        {"val_labels", {1, false}},  {"valid_images", {1, true}},  {"valid_labels", {1, false}},
        {"validation_images", {1, true}}, {"validation_labels", {1, false}}, {"test_images", {2, true}},
        {"test_labels", {2, false}}, {"x_train", {0, true}}, {"y_train", {0, false}}, {"x_val", {1, true}},
        {"y_val", {1, false}}, {"x_test", {2, true}}, {"y_test", {2, false}}};
    auto it = roles.find(key);
    if (it == roles.end()) return false;
    *split = it->second.first;
    *images = it->second.second;
    return true;
}

ImageSet to_set(const NpyArray& img, const NpyArray* lab, const std::string& img_where, const std::string& lab_where) {
    if (img.kind != 'u' || img.item_size != 1)
        HPT_THROW(img_where, ": images must be uint8 ('|u1'), not '", img.descr, "'");
    const std::vector<int64_t>& d = img.shape;
    int64_t c = 1;
    if (d.size() == 4 && (d[3] == 1 || d[3] == 3)) {
        c = d[3];
    } else if (d.size() != 3) {
        HPT_THROW(img_where, ": images must have shape (N, H, W) or (N, H, W, 1|3), not ", shape_str(d));
    }
    std::vector<int64_t> labels(size_t(d[0]), -1);
    if (lab) {
        const std::vector<int64_t>& ls = lab->shape;
        if (ls.size() == 2 && ls[1] != 1)
            HPT_THROW(lab_where, ": labels of shape ", shape_str(ls), " are multi-label; only one label per image is supported");
        if (ls.size() != 1 && ls.size() != 2) HPT_THROW(lab_where, ": labels must have shape (N) or (N, 1), not ", shape_str(ls));
        if (ls[0] != d[0])
            HPT_THROW("image/label count mismatch: ", img_where, " holds ", d[0], " images but ", lab_where, " holds ",
                      ls[0], " labels");
        labels = npy_to_int64(*lab, lab_where);
        for (size_t i = 0; i < labels.size(); ++i)
            if (labels[i] < 0 || labels[i] > INT32_MAX)
                HPT_THROW(lab_where, ": label ", labels[i], " at index ", i, " is not a class index");
    }
    return make_set(img.data.data(), d[0], d[1], d[2], c, labels);
}

}  // namespace

Dataset load_npz(const std::string& path) {
    std::string file = path;
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
        file.clear();
        for (const auto& e : fs::directory_iterator(path, ec))
            if (e.is_regular_file(ec) && lower(e.path().extension().string()) == ".npz") {
                if (!file.empty()) HPT_THROW("'", path, "' holds more than one .npz file; pass the one to load");
                file = e.path().string();
            }
        if (file.empty()) HPT_THROW("'", path, "' holds no .npz file");
    }
    const std::vector<uint8_t> bytes = read_file(file);
    if (!is_zip(bytes.data(), bytes.size())) HPT_THROW(file, ": not an .npz file (no ZIP signature)");
    std::vector<ZipMember> members = read_zip(bytes.data(), bytes.size(), file);

    NpyArray arrays[3][2];
    bool have[3][2] = {};
    std::string where[3][2], names;
    for (ZipMember& m : members) {
        names += (names.empty() ? "" : ", ") + m.name;
        std::string key = m.name;
        if (key.size() > 4 && key.compare(key.size() - 4, 4, ".npy") == 0) key.resize(key.size() - 4);
        int split;
        bool images;
        if (!member_role(key, &split, &images)) continue;
        const int slot = images ? 0 : 1;
        if (have[split][slot]) HPT_THROW(file, ": two members hold the same array as ", m.name);
        where[split][slot] = file + ":" + m.name;
        arrays[split][slot] = parse_npy(m.data.data(), m.data.size(), where[split][slot]);
        have[split][slot] = true;
        m.data = {};  // the parsed copy is all we need
    }
    Dataset ds;
    ImageSet* out[3] = {&ds.train, &ds.val, &ds.test};
    bool any = false;
    for (int s = 0; s < 3; ++s) {
        if (!have[s][0]) {
            if (have[s][1]) HPT_THROW(where[s][1], ": labels without the matching images array");
            continue;
        }
        *out[s] = to_set(arrays[s][0], have[s][1] ? &arrays[s][1] : nullptr, where[s][0], where[s][1]);
        any = true;
    }
    if (!any)
        HPT_THROW(file, ": no image arrays (expected train_images/val_images/test_images); members: ",
                  names.empty() ? "none" : names);
    return ds;
}

}  // namespace hpt::data::detail
