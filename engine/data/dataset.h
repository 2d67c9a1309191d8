// Image-classification datasets read into memory as uint8 NHWC images plus int64 labels.
//
// Formats (detected from content, or forced with LoadOptions::format):
//   idx           a directory with train-/t10k-{images,labels} IDX files (raw or .gz), or one images
//                 file whose labels file sits beside it. A directory with only t10k files (the MNIST
//                 test set here) becomes a dataset with only a test split: train and val are empty
//                 (0 images); nothing is carved from test, because test must stay untouched.
//   npz           a MedMNIST .npz (or a directory holding exactly one): members {train,val,test}_images
//                 and _labels (Keras-style x_train/y_train/x_test/y_test also work).
//   digits_csv    scikit-learn's digits.csv(.gz): no splits in the file (test and val are carved).
//   image_folder  root/<class>/**.png|jpg|jpeg|bmp (labels from the sorted class names), or a flat
//                 folder (labels -1); either may sit under root/train, root/val, root/test.
//   list_file     a text file of "path [label]" lines, paths relative to the file's folder; '#'
//                 starts a comment. Everything goes to train.
// A dataset whose train split is labeled and which has no test split gets about test_fraction of
// its train split carved out as test, the same images in every run whatever LoadOptions::seed
// says; test_carved says so. Image files are chosen by a hash of their relative path, so an image
// stays in (or out of) test when images are added or removed; array formats by a fixed-seed
// permutation (test_fraction of them, rounded). Then any dataset
// without a val split gets val_fraction of its train split carved out (seeded, not stratified);
// val_carved says so. Image files are decoded by stb_image to 1 channel, or 3 when any image of
// the dataset has colour (alpha is dropped), and resized to image_size (triangle filter, i.e.
// bilinear, widened when shrinking) when it is not 0; otherwise all must share one size.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/tensor.h"

namespace hpt::data {

struct ImageSet {
    Tensor images;            // u8 [N, H, W, C], C = 1 or 3
    Tensor labels;            // i64 [N]; -1 when unlabeled
    int64_t num_classes = 0;  // of the whole dataset (0 when unlabeled)
    std::vector<std::string> names;  // image files: each image's path relative to the dataset; else empty

    int64_t size() const { return images.defined() ? images.size(0) : 0; }
};

struct Dataset {
    std::string path, format;
    ImageSet train, val, test;
    bool val_carved = false;   // val was carved out of train
    bool test_carved = false;  // test was carved out of train (fixed seed)
    std::vector<std::string> class_names;  // image folders only; empty otherwise
    int64_t skipped_images = 0;            // unreadable image files skipped (not strict)
};

enum class Format { automatic, idx, npz, digits_csv, image_folder, list_file };

// The largest square side a user may ask images to be resized or evaluated at: 8192^2 = 2^26
// pixels, the image decoder's own limit (image_decode.cpp).
constexpr int64_t kMaxImageSide = 8192;

struct LoadOptions {
    Format format = Format::automatic;
    int64_t image_size = 0;     // 0 = keep; else resize image files to this square size
    double val_fraction = 0.1;   // of train, when the dataset has no val split
    double test_fraction = 0.2;  // of a labeled train, when the dataset has no test split (fixed seed)
    uint64_t seed = 0;          // for carve-outs
    bool strict = false;        // unreadable images in a folder or list are errors, not warnings
};

Dataset load_dataset(const std::string& path, const LoadOptions& opt = {});

// What load_dataset(path) would read it as; throws when the path is missing or unrecognised.
Format detect_format(const std::string& path);
const char* format_name(Format f);
Format parse_format(const std::string& name);  // "auto", "idx", "npz", "digits_csv", ...

// Per-channel mean and (population) std of the images, in [0, 1] units. Meant for the training
// split: augmentation normalises with the dataset's own statistics.
std::pair<std::vector<double>, std::vector<double>> channel_mean_std(const ImageSet& set);
// What the images are normalised with: channel_mean_std, except that a constant channel (std under
// kConstantChannelStd: the unused channels of fluorescence images saved as RGB, a solid-colour
// folder) gets std 1 and so normalises to a constant. Its std of 0 stopped every run and preview.
constexpr double kConstantChannelStd = 1e-6;
std::pair<std::vector<double>, std::vector<double>> normalization_mean_std(const ImageSet& set);

// Splits `set` into (rest, carved) with round(fraction * N) images carved, chosen by a seeded
// permutation; both keep the original order. Deterministic for a given seed on every platform.
std::pair<ImageSet, ImageSet> carve(const ImageSet& set, double fraction, uint64_t seed);

// Splits a set of image files into (rest, carved) by a hash of each name: an image is carved when
// its hash falls in the lowest `fraction` of the range, whatever the other images are.
std::pair<ImageSet, ImageSet> carve_by_name(const ImageSet& set, double fraction);

// Label counts (index = class) over the labeled images of a set.
std::vector<int64_t> class_counts(const ImageSet& set);

}  // namespace hpt::data
