// Layer shapes of the networks we benchmark, taken from the models themselves.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hpt::bench {

struct ConvShape {
    std::string layer;  // where it occurs, e.g. "layer2.0.conv1"
    int64_t n, c, h, w, o, k, stride, pad;
    int count;          // how many convs of the network have this shape
    int64_t out_h() const { return (h + 2 * pad - k) / stride + 1; }
    int64_t out_w() const { return (w + 2 * pad - k) / stride + 1; }
    std::string key() const;       // "n64_c64_h32_w32_o64_k3_s1_p1"
    double flops_fwd() const;      // 2 * MACs
};

struct GemmShape {
    std::string name;
    int64_t m, n, k;  // C[m,n] = A[m,k] B[k,n]
    std::string key() const;  // "m65536_n64_k576"
    double flops() const { return 2.0 * double(m) * double(n) * double(k); }
};

// ResNet-18 with the small-image stem (3x3 conv, stride 1, no max-pool) on 32x32 inputs.
std::vector<ConvShape> resnet18_small_convs(int64_t batch);
// ResNet-50 (torchvision, v1.5: stride on the 3x3) on 224x224 inputs.
std::vector<ConvShape> resnet50_convs(int64_t batch);
// The GEMM each convolution is equivalent to (im2col: M = N*OH*OW, N = O, K = C*k*k), plus the
// MoCo v2 projection head of a ResNet-18 (512 -> 512 -> 128).
std::vector<GemmShape> gemms_for(const std::vector<ConvShape>& convs, int64_t batch, int64_t feat);

}  // namespace hpt::bench
