// u8 NHWC images -> float32 NCHW model input, without augmentation: evaluation, embedding and
// linear probes see images this way.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/core/tensor.h"

namespace hpt::data {

struct InputSpec {
    int64_t size = 0;          // output height = width; 0 keeps the images' size (must be square)
    int64_t channels = 0;      // 1 or 3; 0 keeps the images' channels. Gray -> RGB replicates, RGB -> gray uses
                               // the ITU-R 601 luma weights (0.299, 0.587, 0.114), as torchvision does.
    std::vector<double> mean;  // per OUTPUT channel, in [0, 1] units
    std::vector<double> std;
};

// The spec a dataset's own statistics give for a model with `channels` input channels.
InputSpec spec_for(const std::vector<double>& data_mean, const std::vector<double>& data_std, int64_t channels,
                   int64_t size);

// images: u8 [N, H, W, C] on the CPU; rows [begin, end). Resizing is bilinear with half-pixel
// centres (align_corners = false), no antialiasing. Output on the CPU.
Tensor prepare_images(const Tensor& images, int64_t begin, int64_t end, const InputSpec& spec);

}  // namespace hpt::data
