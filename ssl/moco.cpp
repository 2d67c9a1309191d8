#include "ssl/moco.h"

#include "engine/autograd/grad_mode.h"
#include "engine/ops/ops.h"
#include "ssl/ops.h"
#include <cstdint>

namespace hpt::ssl {

Moco::Moco(const models::ResNetConfig& encoder, const MocoConfig& cfg, Generator& init, Device device) : cfg_(cfg) {
    HPT_CHECK(encoder.head == models::Head::mlp, "MoCo needs an encoder with the MLP head, got ", encoder.str());
    HPT_CHECK(cfg.queue_size > 0 && cfg.temperature > 0 && cfg.momentum >= 0 && cfg.momentum <= 1,
              "MoCo: bad queue size ", cfg.queue_size, ", temperature ", cfg.temperature, " or momentum ", cfg.momentum);
    q_ = std::make_shared<models::ResNet>(encoder, init);
    Generator unused(0);
    k_ = std::make_shared<models::ResNet>(encoder, unused);
    k_->copy_state_from(*q_);
    for (const Tensor& p : k_->parameters()) p.requires_grad_(false);
    q_->flatten(device);
    k_->flatten(device);
    NoGradGuard ng;
    queue_ = l2_normalize(init.randn({cfg.queue_size, encoder.proj_dim}, DType::f32, device), 1);
}

void Moco::set_queue_ptr(int64_t p) {
    HPT_CHECK(p >= 0 && p < cfg_.queue_size, "MoCo queue pointer ", p, " outside [0, ", cfg_.queue_size, ")");
    ptr_ = p;
}

int64_t Moco::bn_groups_for(int64_t batch, int64_t world) const {
    int64_t g = cfg_.bn_groups;
    if (g == 0) {
        // About 64 images a group: the most groups up to batch / 64 that divide the batch, at least
        // one per rank (batch / 64 itself refused a batch of 200 as "not divisible into 3 groups").
        g = world;
        for (int64_t k = std::max<int64_t>(1, batch / 64); k >= world; --k)
            if (batch % k == 0 && k % world == 0) {
                g = k;
                break;
            }
    }
    HPT_CHECK(batch % g == 0, "MoCo: batch ", batch, " is not divisible into ", g, " BN groups (moco.bn_groups",
              cfg_.bn_groups == 0 ? " = 0 chose one per rank" : "", ")");
    HPT_CHECK(batch / g >= 2, "MoCo: ", g, " BN groups of a batch of ", batch, " leave ", batch / g,
              " image per group, and batch norm needs at least 2 (moco.bn_groups)");
    return g;
}

std::vector<int64_t> Moco::shuffle_permutation(int64_t batch, uint64_t seed, int64_t step) {
    Generator g(seed, 0x5348554646ull /* "SHUFF" */);
    g.set_position(uint64_t(step) * uint64_t(batch));
    return g.permutation(batch);
}

Tensor Moco::loss(const Tensor& view1, const Tensor& view2, const std::vector<int64_t>& key_perm) {
    HPT_CHECK(view2.shape() == view1.shape(), "MoCo: the two views differ in shape: ", shape_str(view1.shape()), " and ",
              shape_str(view2.shape()));
    const int64_t n = view1.size(0);
    HPT_CHECK(int64_t(key_perm.size()) == n, "MoCo: key permutation of ", key_perm.size(), " for a batch of ", n);
    static const std::unique_ptr<dist::Comm> alone = dist::make_local_comm();
    Tensor shuffled;
    {
        NoGradGuard ng;
        shuffled = index_select(view2, 0, from_vector<int64_t>(key_perm, {n}, view2.device()));
    }
    return loss_on_rank(view1, shuffled, key_perm, *alone);
}

Tensor Moco::loss_on_rank(const Tensor& view1, const Tensor& key_input, const std::vector<int64_t>& key_perm,
                          dist::Comm& comm) {
    const int64_t n = view1.size(0), world = comm.world(), total = n * world;
    HPT_CHECK(key_input.shape() == view1.shape(), "MoCo: the query and key inputs differ in shape: ",
              shape_str(view1.shape()), " and ", shape_str(key_input.shape()));
    HPT_CHECK(int64_t(key_perm.size()) == total, "MoCo: key permutation of ", key_perm.size(), " for a batch of ",
              total, world > 1 ? str(" (", n, " per rank on ", world, " ranks)") : std::string());
    HPT_CHECK(cfg_.queue_size % total == 0, "MoCo: queue size ", cfg_.queue_size, " is not divisible by the batch size ",
              total, " (the enqueue would wrap mid-batch)");
    const int64_t groups = bn_groups_for(total, world);
    HPT_CHECK(groups % world == 0, "MoCo: ", groups, " BN groups cannot be shared by ", world,
              " ranks (each rank normalises its own part of the batch; set moco.bn_groups to a multiple of ", world, ")");
    q_->set_bn_groups(groups / world);
    k_->set_bn_groups(groups / world);

    // 1. queries
    const Tensor q = l2_normalize(q_->forward(view1), 1);
    Tensor my_keys;
    {
        NoGradGuard ng;
        // 2. key encoder update (parameters only; the BN buffers are the key encoder's own)
        momentum_update(k_->flat_params(), q_->flat_params(), cfg_.momentum);
        // 3. shuffled key forward (this rank's rows), gathered, unshuffled
        const Tensor k_rows = l2_normalize(k_->forward(key_input), 1);
        const Tensor k_shuffled = comm.all_gather(k_rows);  // the rows themselves at one rank
        std::vector<int64_t> inverse(static_cast<size_t>(total));
        for (int64_t i = 0; i < total; ++i) inverse[size_t(key_perm[size_t(i)])] = i;
        last_keys_ = index_select(k_shuffled, 0, from_vector<int64_t>(inverse, {total}, k_rows.device()));
        my_keys = last_keys_.slice(0, comm.rank() * n, (comm.rank() + 1) * n);
    }
    // 4. InfoNCE against [k; queue]
    return info_nce(q, my_keys, queue_, cfg_.temperature);
}

void Moco::enqueue() {
    HPT_CHECK(last_keys_.defined(), "MoCo::enqueue before loss()");
    NoGradGuard ng;
    const int64_t n = last_keys_.size(0);
    queue_.slice(0, ptr_, ptr_ + n).copy_(last_keys_);
    ptr_ = (ptr_ + n) % cfg_.queue_size;
    last_keys_ = Tensor();
}

}  // namespace hpt::ssl
