// The per-format loaders behind load_dataset, and the helpers they share. Internal to engine/data.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/data/dataset.h"

namespace hpt::data::detail {

// Copies n images of h x w x c bytes and their labels into an ImageSet.
ImageSet make_set(const uint8_t* pixels, int64_t n, int64_t h, int64_t w, int64_t c, const std::vector<int64_t>& labels);

// Each loader fills the splits the source has and leaves the others undefined; load_dataset then
// gives them 0 images, carves val and sets num_classes.
Dataset load_idx(const std::string& path);
Dataset load_npz(const std::string& path);
Dataset load_digits_csv(const std::string& path, const LoadOptions& opt);
Dataset load_image_folder(const std::string& path, const LoadOptions& opt);
Dataset load_list_file(const std::string& path, const LoadOptions& opt);

// IDX file names: {train,t10k,test}-{images,labels}...idx... with an optional .gz.
struct IdxName {
    bool ok = false;
    bool test = false;    // t10k / test split
    bool images = false;  // images (else labels)
};
IdxName parse_idx_name(const std::string& file_name);

}  // namespace hpt::data::detail
