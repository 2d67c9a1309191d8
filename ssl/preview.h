// What `hpt_run data preview` writes: a PNG grid that shows what the augmentation policy does to
// a dataset, to check it by eye.
#pragma once
#include <cstdint>
#include <string>

#include "engine/data/dataset.h"
#include "ssl/augment.h"

namespace hpt::ssl {

// One row per image (the first n_images of the training split, or of test when there is none):
// the original, then its two views drawn with `seed` at epoch 0, de-normalised for display and
// magnified with nearest-neighbour so that cells are at least 96 pixels tall. The views are
// normalised with the training split's own mean/std (cfg's are replaced), so de-normalising
// gives back [0, 1] values exactly as the policy produced them.
// Returns the rows drawn: n_images, or fewer when the split has fewer images.
int64_t write_preview_grid(const data::Dataset& ds, const std::string& out_png, int64_t n_images,
                           const AugmentConfig& cfg, uint64_t seed);

}  // namespace hpt::ssl
