// Attribute structs passed to kernels (KernelArgs::attrs) and kept by autograd nodes for backward.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/core/tensor.h"

namespace hpt {

struct ClampAttrs {
    double lo, hi;  // -inf / +inf when absent
};

struct ReduceAttrs {
    std::vector<int64_t> dims;  // sorted, wrapped, unique; all dims when the user gave none
    bool keepdim = false;
};

struct DimAttrs {  // max, argmax, softmax, log_softmax, cat, index_select, gather, index_add, scatter_add
    int64_t dim = 0;
    bool keepdim = false;
};

struct Conv2dAttrs {
    int64_t stride[2] = {1, 1};
    int64_t padding[2] = {0, 0};
    int64_t dilation[2] = {1, 1};
    int64_t groups = 1;
};

struct BatchNormAttrs {
    bool training = true;
    double momentum = 0.1;  // running = (1 - momentum) * running + momentum * batch statistic
    double eps = 1e-5;
    int64_t groups = 1;     // statistics over `groups` equal slices of the batch (ghost BN)
    // y = max(bn(x) [+ residual], 0): the ReLU (and a ResNet block's residual sum) applied as the
    // normalised values are written, instead of a further pass or two over the activation.
    bool relu = false;
};

struct Pool2dAttrs {
    int64_t kernel[2] = {2, 2};
    int64_t stride[2] = {2, 2};
    int64_t padding[2] = {0, 0};
    bool count_include_pad = true;  // avg_pool2d only
};

struct L2NormAttrs {
    int64_t dim = 1;
    double eps = 1e-12;
};

struct ViewAttrs {
    Shape shape;
};

struct PermuteAttrs {
    std::vector<int64_t> dims;
};

struct SliceAttrs {
    int64_t dim, start, end, step;
};

struct FillAttrs {
    double value = 0.0;
};

// Counter-based random fill: element i of the output is a function of (seed, stream, offset + i)
// only, so CPU and GPU produce the same numbers whatever the launch shape.
struct RandomAttrs {
    enum Dist : int { normal = 0, uniform = 1 } dist = normal;
    uint64_t seed = 0, stream = 0, offset = 0;
    double a = 0.0, b = 1.0;  // normal: mean, std; uniform: low, high
};

struct SgdAttrs {
    double lr = 0.0;
    double momentum = 0.9;
    double weight_decay = 0.0;  // added to the gradient before momentum (PyTorch's coupled decay)
};

struct InfoNceAttrs {
    double temperature = 0.2;
};

struct MomentumAttrs {
    double momentum = 0.999;  // target = momentum * target + (1 - momentum) * source
};

}  // namespace hpt
