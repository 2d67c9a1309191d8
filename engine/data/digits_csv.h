// scikit-learn's 8x8 handwritten digits (sklearn/datasets/data/digits.csv.gz): one image per line,
// 64 comma-separated pixel values 0..16 in row-major order, then the label. Plain or gzip.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hpt::data {

struct DigitsCsv {
    int64_t count = 0;
    std::vector<uint8_t> pixels;  // count x 8 x 8, scaled to 0..255 as round(v * 255 / 16)
    std::vector<int64_t> labels;  // count
};

// True when the first line has 65 numeric fields (after gunzip, if gzip).
bool looks_like_digits_csv(const uint8_t* data, size_t size);
DigitsCsv parse_digits_csv(const uint8_t* data, size_t size, const std::string& origin);

}  // namespace hpt::data
