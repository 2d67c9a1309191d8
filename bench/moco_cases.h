// The two MoCo kernels as bench_kernels times them, on the CPU (bench_kernels.cpp) and on a GPU
// (kernels_cuda.cpp): the same inputs, work, flop and byte counts, and the same requests to the
// PyTorch peer (tools/peer_kernels.py), so the two parts measure one thing.
#pragma once
#include <cstdint>
#include <string>

#include "engine/core/random.h"
#include "engine/ops/ops.h"
#include "models/resnet.h"
#include "ssl/ops.h"

namespace hpt::bench {

// MoCo's loss at N = 256, D = 128, K = 65536: the fused op, forward and backward to q.
struct InfoNceCase {
    static constexpr int64_t N = 256, D = 128, K = 65536;
    Tensor q, k, queue;
    explicit InfoNceCase(Device dev = Device::cpu()) {
        Generator g(7, 3);
        q = l2_normalize(g.randn({N, D}, DType::f32, dev), 1).detach().requires_grad_();
        k = l2_normalize(g.randn({N, D}, DType::f32, dev), 1).detach();
        queue = l2_normalize(g.randn({K, D}, DType::f32, dev), 1).detach();
    }
    void step() {
        q.set_grad(Tensor());
        info_nce(q, k, queue, 0.2).backward();
    }
    static std::string shape() { return "n256_d128_k65536"; }
    static std::string peer_request() {
        return "{\"bench\": \"info_nce_fwd_bwd\", \"shape\": \"n256_d128_k65536\", \"n\": 256, \"d\": 128, "
               "\"k\": 65536, \"t\": 0.2}";
    }
    // Two GEMM-sized products, both in the forward (logits, then o = P queue, from which the
    // backward takes dq without another pass), 2 flops per multiply-add.
    static double flops() { return 4.0 * double(N) * double(K) * double(D); }
    // The queue is read once, by the forward (the queue needs no gradient); q, k and dq are small.
    static double bytes() { return double(K) * double(D) * 4.0; }
};

// The key encoder's update over a ResNet-50 MoCo encoder's parameters (backbone and MLP head),
// one pass over the flat buffers. PyTorch runs it two ways: a per-tensor loop and _foreach.
struct MomentumCase {
    Tensor k, q;
    int64_t n = 0;
    explicit MomentumCase(Device dev = Device::cpu()) {
        models::ResNetConfig c;
        c.depth = 50;
        c.head = models::Head::mlp;
        Generator g(7, 4);
        models::ResNet m(c, g);
        m.flatten(dev);
        q = m.flat_params();
        k = q.clone();
        n = m.num_parameters();
    }
    void step() { momentum_update(k, q, 0.999); }
    double bytes() const { return 12.0 * double(k.numel()); }  // read k and q, write k (f32)
    std::string shape() const { return "resnet50_mlp_" + std::to_string(n); }
    // variant: "loop" or "foreach"
    static std::string layer(const std::string& variant) {
        return std::string("vs PyTorch ") + (variant == "loop" ? "per-tensor loop" : "_foreach_mul_/_foreach_add_");
    }
    static std::string peer_bench(const std::string& variant) { return "momentum_update_" + variant; }
    static std::string peer_request(const std::string& variant) {
        return "{\"bench\": \"" + peer_bench(variant) + "\", \"shape\": \"resnet50_mlp\", \"depth\": 50, \"m\": 0.999}";
    }
};

}  // namespace hpt::bench
