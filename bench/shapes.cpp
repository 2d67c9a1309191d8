#include "bench/shapes.h"
#include <cstdint>

namespace hpt::bench {

std::string ConvShape::key() const {
    return "n" + std::to_string(n) + "_c" + std::to_string(c) + "_h" + std::to_string(h) + "_w" + std::to_string(w) +
           "_o" + std::to_string(o) + "_k" + std::to_string(k) + "_s" + std::to_string(stride) + "_p" +
           std::to_string(pad);
}

double ConvShape::flops_fwd() const { return 2.0 * double(n * o * out_h() * out_w()) * double(c * k * k); }

std::string GemmShape::key() const {
    return "m" + std::to_string(m) + "_n" + std::to_string(n) + "_k" + std::to_string(k);
}

std::vector<ConvShape> resnet18_small_convs(int64_t b) {
    return {
        {"conv1", b, 3, 32, 32, 64, 3, 1, 1, 1},
        {"layer1.*.conv*", b, 64, 32, 32, 64, 3, 1, 1, 4},
        {"layer2.0.conv1", b, 64, 32, 32, 128, 3, 2, 1, 1},
        {"layer2.*.conv*", b, 128, 16, 16, 128, 3, 1, 1, 3},
        {"layer2.0.downsample.0", b, 64, 32, 32, 128, 1, 2, 0, 1},
        {"layer3.0.conv1", b, 128, 16, 16, 256, 3, 2, 1, 1},
        {"layer3.*.conv*", b, 256, 8, 8, 256, 3, 1, 1, 3},
        {"layer3.0.downsample.0", b, 128, 16, 16, 256, 1, 2, 0, 1},
        {"layer4.0.conv1", b, 256, 8, 8, 512, 3, 2, 1, 1},
        {"layer4.*.conv*", b, 512, 4, 4, 512, 3, 1, 1, 3},
        {"layer4.0.downsample.0", b, 256, 8, 8, 512, 1, 2, 0, 1},
    };
}

std::vector<ConvShape> resnet50_convs(int64_t b) {
    std::vector<ConvShape> s{{"conv1", b, 3, 224, 224, 64, 7, 2, 3, 1}};
    // (layer, input size, in channels, width, blocks, stride of the first block)
    struct Stage {
        const char* name;
        int64_t size, in, width, blocks, stride;
    };
    const Stage stages[] = {{"layer1", 56, 64, 64, 3, 1},
                            {"layer2", 56, 256, 128, 4, 2},
                            {"layer3", 28, 512, 256, 6, 2},
                            {"layer4", 14, 1024, 512, 3, 2}};
    for (const Stage& st : stages) {
        const std::string L = st.name;
        const int64_t out = st.width * 4, after = st.size / st.stride;
        const int rest = int(st.blocks - 1);
        s.push_back({L + ".0.conv1", b, st.in, st.size, st.size, st.width, 1, 1, 0, 1});
        s.push_back({L + ".0.conv2", b, st.width, st.size, st.size, st.width, 3, st.stride, 1, 1});
        s.push_back({L + ".*.conv3", b, st.width, after, after, out, 1, 1, 0, int(st.blocks)});
        s.push_back({L + ".0.downsample.0", b, st.in, st.size, st.size, out, 1, st.stride, 0, 1});
        s.push_back({L + ".*.conv1", b, out, after, after, st.width, 1, 1, 0, rest});
        if (st.stride != 1) {
            s.push_back({L + ".*.conv2", b, st.width, after, after, st.width, 3, 1, 1, rest});
        } else {
            s[s.size() - 4].count += rest;  // layer1: the 3x3 keeps its shape in every block
        }
    }
    return s;
}

std::vector<GemmShape> gemms_for(const std::vector<ConvShape>& convs, int64_t batch, int64_t feat) {
    std::vector<GemmShape> g;
    for (const ConvShape& c : convs)
        g.push_back({c.layer + " (im2col)", c.n * c.out_h() * c.out_w(), c.o, c.c * c.k * c.k});
    g.push_back({"moco head fc1", batch, feat, feat});
    g.push_back({"moco head fc2", batch, 128, feat});
    return g;
}

}  // namespace hpt::bench
