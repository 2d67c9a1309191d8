#include "engine/dist/reducer.h"

#include <cstdint>
#include <algorithm>

namespace hpt::dist {

GradReducer::GradReducer(nn::Module& module, Comm& comm, int64_t bucket_bytes) : comm_(comm) {
    HPT_CHECK(module.is_flat(), "GradReducer: the module must be flattened first");
    HPT_CHECK(bucket_bytes > 0, "GradReducer: bucket size ", bucket_bytes, " must be positive");
    flat_ = module.flat_grads();
    struct Item {
        std::weak_ptr<TensorImpl> impl;
        int64_t begin, end;
    };
    std::vector<Item> items;
    const int64_t base = flat_.offset();
    for (const Tensor& p : module.parameters()) {
        if (!p.requires_grad()) continue;
        const Tensor& g = p.impl()->grad;
        HPT_CHECK(g.defined() && g.storage() == flat_.storage(),
                  "GradReducer: a parameter's gradient is not a view into the module's flat gradient buffer");
        items.push_back({p.impl_ptr(), g.offset() - base, g.offset() - base + g.numel()});
    }
    HPT_CHECK(!items.empty(), "GradReducer: the module has no trainable parameters");
    std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.begin > b.begin; });
    const int64_t cap = std::max<int64_t>(1, bucket_bytes / 4);
    int64_t in_bucket = cap;  // start a new bucket with the first item
    for (const Item& it : items) {
        if (in_bucket >= cap) {
            buckets_.emplace_back();
            in_bucket = 0;
        }
        Bucket& b = buckets_.back();
        b.ranges.push_back({it.begin, it.end});
        ++b.expected;
        in_bucket += it.end - it.begin;
        const size_t index = buckets_.size() - 1;
        it.impl.lock()->post_accumulate_hook = [this, index] { on_ready(index); };
        hooked_.push_back(it.impl);
    }
    for (Bucket& b : buckets_) {
        // Ascending and merged where only alignment padding separates two parameters (the padding's
        // gradient is zero on every rank, so averaging it changes nothing and saves a copy).
        std::sort(b.ranges.begin(), b.ranges.end());
        Ranges merged;
        for (const auto& r : b.ranges) {
            if (!merged.empty() && r.first - merged.back().second < 16) {
                merged.back().second = r.second;
            } else {
                merged.push_back(r);
            }
        }
        b.ranges = merged;
        b.pending = b.expected;
    }
}

GradReducer::~GradReducer() {
    for (auto& w : hooked_)
        if (auto impl = w.lock()) impl->post_accumulate_hook = nullptr;
}

void GradReducer::on_ready(size_t b) {
    Bucket& bk = buckets_[b];
    if (bk.pending > 0) --bk.pending;
    while (next_ < buckets_.size() && buckets_[next_].pending == 0) {
        ++early_count_;
        launch(next_++);
    }
}

void GradReducer::launch(size_t b) { buckets_[b].work = comm_.all_reduce_mean_async(flat_, buckets_[b].ranges); }

void GradReducer::finish() {
    while (next_ < buckets_.size()) launch(next_++);
    started_early_ = early_count_;
    early_count_ = 0;
    for (Bucket& b : buckets_) {
        if (b.work) b.work->wait();
        b.work.reset();
        b.pending = b.expected;
    }
    next_ = 0;
}

void broadcast_state(nn::Module& module, Comm& comm, int root) {
    HPT_CHECK(module.is_flat(), "broadcast_state: the module must be flattened first");
    comm.broadcast(module.flat_params(), root);
    for (auto& [name, t] : module.named_buffers()) {
        if (t.dtype() == DType::f32 || t.dtype() == DType::f64 || t.dtype() == DType::i64) {
            comm.broadcast(t, root);
        }
    }
}

}  // namespace hpt::dist
