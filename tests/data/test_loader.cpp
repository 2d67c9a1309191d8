// The data loader: coverage of every epoch, seeded order, shards, prefetching and its errors.
#include <cstdint>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <set>

#include "engine/data/loader.h"
#include "engine/ops/ops.h"

using namespace hpt;
using namespace hpt::data;

namespace {

// n images of 6x5 pixels whose bytes encode their index, labels index % 7.
ImageSet numbered_set(int64_t n, int64_t c = 3) {
    ImageSet s;
    s.images = empty({n, 6, 5, c}, DType::u8);
    s.labels = empty({n}, DType::i64);
    uint8_t* p = s.images.data<uint8_t>();
    for (int64_t i = 0; i < n; ++i) {
        for (int64_t k = 0; k < 30 * c; ++k) p[i * 30 * c + k] = uint8_t((i * 37 + k * 11) % 251);
        s.labels.data<int64_t>()[i] = i % 7;
    }
    s.num_classes = 7;
    return s;
}

std::vector<Batch> epoch_batches(Loader& l, int64_t epoch) {
    l.start_epoch(epoch);
    std::vector<Batch> out;
    Batch b;
    while (l.next(b)) out.push_back(b);
    return out;
}

std::vector<int64_t> all_indices(const std::vector<Batch>& bs) {
    std::vector<int64_t> v;
    for (const Batch& b : bs) v.insert(v.end(), b.indices.begin(), b.indices.end());
    return v;
}

bool same_bits(const Tensor& a, const Tensor& b) {
    if (a.shape() != b.shape()) return false;
    const auto x = a.to_vector<float>(), y = b.to_vector<float>();
    return std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("every sample exactly once per epoch, with and without drop_last", "[data][loader]") {
    const ImageSet set = numbered_set(103);
    for (const bool drop : {false, true}) {
        for (const int prefetch : {0, 2}) {
            LoaderConfig cfg;
            cfg.mode = LoaderMode::plain;
            cfg.batch_size = 10;
            cfg.drop_last = drop;
            cfg.prefetch = prefetch;
            cfg.seed = 4;
            Loader l(set, cfg);
            INFO("drop_last " << drop << ", prefetch " << prefetch);
            CHECK(l.batches_per_epoch() == (drop ? 10 : 11));
            for (int64_t epoch : {0, 1}) {
                const auto bs = epoch_batches(l, epoch);
                REQUIRE(int64_t(bs.size()) == l.batches_per_epoch());
                std::vector<int64_t> idx = all_indices(bs);
                CHECK(int64_t(idx.size()) == (drop ? 100 : 103));
                std::sort(idx.begin(), idx.end());
                CHECK(std::adjacent_find(idx.begin(), idx.end()) == idx.end());  // no repeats
                if (!drop) CHECK((idx.front() == 0 && idx.back() == 102));
                for (const Batch& b : bs) {
                    CHECK(b.epoch == epoch);
                    CHECK(b.images.shape() == Shape{b.size(), 3, 6, 5});
                    const auto lab = b.labels.to_vector<int64_t>();
                    for (int64_t i = 0; i < b.size(); ++i) REQUIRE(lab[size_t(i)] == b.indices[size_t(i)] % 7);
                }
                CHECK(bs.back().size() == (drop ? 10 : 3));
            }
        }
    }
}

TEST_CASE("plain batches are the normalised images of their indices", "[data][loader]") {
    const ImageSet set = numbered_set(9);
    LoaderConfig cfg;
    cfg.mode = LoaderMode::plain;
    cfg.batch_size = 4;
    cfg.drop_last = false;
    cfg.mean = {0.5, 0.4, 0.3};
    cfg.std = {0.2, 0.25, 0.5};
    Loader l(set, cfg);
    const auto bs = epoch_batches(l, 3);
    const uint8_t* p = set.images.data<uint8_t>();
    for (const Batch& b : bs) {
        const auto v = b.images.to_vector<float>();
        for (int64_t i = 0; i < b.size(); ++i)
            for (int64_t c = 0; c < 3; ++c)
                for (int64_t y = 0; y < 6; ++y)
                    for (int64_t x = 0; x < 5; ++x) {
                        const float u = float(p[((b.indices[size_t(i)] * 6 + y) * 5 + x) * 3 + c]) / 255.f;
                        const float want = (u - float(cfg.mean[size_t(c)])) / float(cfg.std[size_t(c)]);
                        REQUIRE(std::fabs(v[size_t(((i * 3 + c) * 6 + y) * 5 + x)] - want) < 1e-5f);
                    }
    }
    // Resized and replicated to 3 channels (1-channel set).
    LoaderConfig g = cfg;
    g.resize = 12;
    g.gray_to_rgb = true;
    g.mean = {0.5};
    g.std = {0.2};
    Loader lg(numbered_set(5, 1), g);
    const auto gb = epoch_batches(lg, 0);
    CHECK(gb[0].images.shape() == Shape{4, 3, 12, 12});
}

TEST_CASE("the order is a pure function of (seed, epoch)", "[data][loader]") {
    CHECK(epoch_permutation(50, 7, 2) == epoch_permutation(50, 7, 2));
    CHECK(epoch_permutation(50, 7, 2) != epoch_permutation(50, 7, 3));
    CHECK(epoch_permutation(50, 7, 2) != epoch_permutation(50, 8, 2));
    const ImageSet set = numbered_set(40);
    LoaderConfig cfg;
    cfg.mode = LoaderMode::plain;
    cfg.batch_size = 8;
    cfg.seed = 11;
    Loader a(set, cfg), b(set, cfg);
    const auto a1 = all_indices(epoch_batches(a, 1)), a2 = all_indices(epoch_batches(a, 2));
    CHECK(all_indices(epoch_batches(b, 2)) == a2);  // epochs in another order: same
    CHECK(all_indices(epoch_batches(b, 1)) == a1);
    CHECK(a1 != a2);
    CHECK(a1 == a.epoch_indices(1));
    cfg.shuffle = false;
    Loader c(set, cfg);
    const auto seq = all_indices(epoch_batches(c, 5));
    for (size_t i = 0; i < seq.size(); ++i) CHECK(seq[i] == int64_t(i));
}

TEST_CASE("shards are disjoint and cover the epoch", "[data][loader]") {
    const ImageSet set = numbered_set(103);
    for (const bool drop : {false, true}) {
        std::vector<int64_t> seen;
        std::vector<int64_t> counts;
        for (int rank = 0; rank < 3; ++rank) {
            LoaderConfig cfg;
            cfg.mode = LoaderMode::plain;
            cfg.batch_size = 5;
            cfg.drop_last = drop;
            cfg.rank = rank;
            cfg.world_size = 3;
            cfg.seed = 9;
            Loader l(set, cfg);
            const auto idx = all_indices(epoch_batches(l, 4));
            counts.push_back(int64_t(idx.size()));
            CHECK(l.samples_per_epoch() == (drop ? 34 : (rank == 0 ? 35 : 34)));
            if (drop) CHECK(idx.size() == 30);  // 34 samples, batches of 5
            if (!drop) CHECK(int64_t(idx.size()) == l.samples_per_epoch());
            seen.insert(seen.end(), idx.begin(), idx.end());
        }
        std::sort(seen.begin(), seen.end());
        CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end());
        if (!drop) CHECK(seen.size() == 103);
    }
    // Without batching: the shards of the epoch's order partition it.
    const auto order = epoch_permutation(103, 9, 4);
    std::vector<int64_t> all;
    for (int r = 0; r < 4; ++r) {
        const auto s = shard(order, r, 4, false);
        all.insert(all.end(), s.begin(), s.end());
    }
    std::sort(all.begin(), all.end());
    for (int64_t i = 0; i < 103; ++i) CHECK(all[size_t(i)] == i);
    CHECK_THROWS_WITH(shard(order, 4, 4, false), Catch::Contains("rank 4 of 4"));
}

TEST_CASE("prefetching gives the same batches as making them in next()", "[data][loader]") {
    const ImageSet set = numbered_set(37);
    LoaderConfig cfg;
    cfg.batch_size = 8;
    cfg.drop_last = false;
    cfg.seed = 3;
    cfg.augment = ssl::augment_policy("full", 8);
    cfg.prefetch = 0;
    Loader sync(set, cfg);
    cfg.prefetch = 3;
    cfg.worker_threads = 1;
    Loader pre(set, cfg);
    for (int64_t epoch : {0, 1}) {
        const auto a = epoch_batches(sync, epoch), b = epoch_batches(pre, epoch);
        REQUIRE(a.size() == b.size());
        for (size_t k = 0; k < a.size(); ++k) {
            CHECK(a[k].indices == b[k].indices);
            CHECK(a[k].view1.shape() == Shape{a[k].size(), 3, 8, 8});
            CHECK(same_bits(a[k].view1, b[k].view1));
            CHECK(same_bits(a[k].view2, b[k].view2));
            CHECK(!same_bits(a[k].view1, a[k].view2));
        }
    }
}

TEST_CASE("worker errors surface in next(), and the loader shuts down cleanly", "[data][loader]") {
    const ImageSet set = numbered_set(50);
    LoaderConfig cfg;
    cfg.mode = LoaderMode::plain;
    cfg.batch_size = 5;
    cfg.prefetch = 2;
    Loader l(set, cfg);
    l.set_batch_hook([](int64_t, int64_t b) {
        if (b == 3) throw Error("disk on fire at batch 3");
    });
    l.start_epoch(0);
    Batch b;
    int got = 0;
    try {
        while (l.next(b)) ++got;
        FAIL("no error surfaced");
    } catch (const Error& e) {
        CHECK(std::string(e.what()).find("disk on fire at batch 3") != std::string::npos);
    }
    CHECK(got == 3);
    CHECK_FALSE(l.next(b));  // the epoch is over
    l.set_batch_hook({});
    CHECK(epoch_batches(l, 1).size() == 10);  // the next epoch works

    // Destroyed while the worker waits on a full queue, and restarted mid-epoch.
    std::atomic<int> made{0};
    {
        Loader l2(set, cfg);
        l2.set_batch_hook([&](int64_t, int64_t) { ++made; });
        l2.start_epoch(0);
        CHECK(l2.next(b));
        l2.start_epoch(1);
        CHECK(l2.next(b));
        CHECK(b.epoch == 1);
        CHECK(b.index == 0);
    }
    CHECK(made >= 2);
    CHECK_THROWS_WITH(Loader(set, cfg).next(b), Catch::Contains("before start_epoch"));
}

TEST_CASE("a plan pairs view 1 of some images with view 2 of others, and an epoch can start mid-way",
          "[data][loader]") {
    const ImageSet set = numbered_set(40);
    LoaderConfig cfg;
    cfg.batch_size = 6;
    cfg.seed = 5;
    cfg.augment = ssl::augment_policy("full", 8);
    // Batch b of epoch e: images 6b.. for view 1, the same block reversed and shifted for view 2.
    cfg.plan = [](int64_t epoch, int64_t b) {
        BatchPlan p;
        for (int64_t j = 0; j < 6; ++j) {
            p.view1.push_back((6 * b + j + epoch) % 40);
            p.view2.push_back((6 * b + 5 - j + 2 * epoch) % 40);
        }
        return p;
    };
    cfg.plan_batches = 4;
    const auto [mean, sd] = channel_mean_std(set);
    ssl::AugmentConfig aug = cfg.augment;
    ssl::set_normalization(aug, mean, sd);
    auto images_of = [&](const std::vector<int64_t>& idx) { return index_select(set.images, 0, from_vector(idx)); };
    for (const int prefetch : {0, 2}) {
        cfg.prefetch = prefetch;
        Loader l(set, cfg);
        CHECK(l.batches_per_epoch() == 4);
        const auto bs = epoch_batches(l, 1);
        REQUIRE(bs.size() == 4);
        for (const Batch& b : bs) {
            const BatchPlan p = cfg.plan(1, b.index);
            CHECK(b.indices == p.view1);
            CHECK(b.indices2 == p.view2);
            // Each view is the one its image would get in any batch: keyed by (seed, epoch, index, view).
            CHECK(same_bits(b.view1, ssl::augment_view(images_of(p.view1), p.view1, 0, aug, 5, 1)));
            CHECK(same_bits(b.view2, ssl::augment_view(images_of(p.view2), p.view2, 1, aug, 5, 1)));
            CHECK(b.labels.to_vector<int64_t>()[0] == p.view1[0] % 7);
        }
        l.start_epoch(1, 2);  // a resumed run: batches 2 and 3 only, the same as before
        Batch b;
        for (int64_t k = 2; k < 4; ++k) {
            REQUIRE(l.next(b));
            CHECK(b.index == k);
            CHECK(same_bits(b.view1, bs[size_t(k)].view1));
            CHECK(same_bits(b.view2, bs[size_t(k)].view2));
        }
        CHECK_FALSE(l.next(b));
        CHECK_THROWS_WITH(l.start_epoch(1, 5), Catch::Contains("batch 5 of an epoch of 4"));
    }
}

TEST_CASE("without a plan view 2 is of the same images; a bad plan is named", "[data][loader]") {
    const ImageSet set = numbered_set(20);
    LoaderConfig cfg;
    cfg.batch_size = 4;
    cfg.augment = ssl::augment_policy("full", 8);
    cfg.prefetch = 0;
    {
        Loader l(set, cfg);
        for (const Batch& b : epoch_batches(l, 0)) CHECK(b.indices2 == b.indices);
    }
    cfg.plan_batches = 2;
    cfg.plan = [](int64_t, int64_t b) { return BatchPlan{{0, 1}, {2, b == 1 ? 20 : 3}}; };
    Loader l(set, cfg);
    l.start_epoch(0);
    Batch b;
    CHECK(l.next(b));
    CHECK_THROWS_WITH(l.next(b), Catch::Contains("names image 20 of a set of 20"));
    cfg.plan = [](int64_t, int64_t) { return BatchPlan{{0, 1}, {2}}; };
    Loader uneven(set, cfg);
    uneven.start_epoch(0);
    CHECK_THROWS_WITH(uneven.next(b), Catch::Contains("has 2 and 1 images"));
    cfg.plan_batches = 0;
    CHECK_THROWS_WITH(Loader(set, cfg), Catch::Contains("plan_batches >= 1"));
    cfg.plan_batches = 1;
    cfg.mode = LoaderMode::plain;
    CHECK_THROWS_WITH(Loader(set, cfg), Catch::Contains("needs augment mode"));
}
