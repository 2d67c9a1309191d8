// Tensors: dtypes, shapes, strides, views, copies, conversions and the allocator's statistics.
#include <cstdint>
#include <catch2/catch.hpp>

#include "engine/core/allocator.h"
#include "engine/core/random.h"
#include "engine/ops/ops.h"

using namespace hpt;

TEST_CASE("dtypes have their sizes and names", "[tensor]") {
    CHECK(dtype_size(DType::f32) == 4);
    CHECK(dtype_size(DType::f64) == 8);
    CHECK(dtype_size(DType::bf16) == 2);
    CHECK(dtype_size(DType::u8) == 1);
    CHECK(dtype_size(DType::i32) == 4);
    CHECK(dtype_size(DType::i64) == 8);
    CHECK(std::string(dtype_name(DType::bf16)) == "bf16");
    for (DType t : {DType::f32, DType::f64, DType::bf16, DType::u8, DType::i32, DType::i64}) {
        Tensor z = zeros({2, 3}, t);
        CHECK(z.dtype() == t);
        CHECK(z.storage()->nbytes() == 6 * dtype_size(t));
    }
}

TEST_CASE("bf16 rounds to nearest even and keeps NaN", "[tensor]") {
    CHECK(float(bf16(1.0f)) == 1.0f);
    // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
    CHECK(float(bf16(1.0f + 1.0f / 256)) == 1.0f);
    CHECK(float(bf16(1.0f + 3.0f / 256)) == 1.0f + 1.0f / 64);
    CHECK(std::isnan(float(bf16(NAN))));
    Tensor t = from_vector<float>({1.0f, 3.14159f, -2.5f}).to(DType::bf16);
    std::vector<float> back = t.to_vector<float>();
    CHECK(back[0] == 1.0f);
    CHECK(back[1] == Approx(3.14159).epsilon(1.0 / 128));
    CHECK(back[2] == -2.5f);
}

TEST_CASE("contiguous strides, numel and is_contiguous", "[tensor]") {
    Tensor t = empty({2, 3, 4});
    CHECK(t.strides() == Shape{12, 4, 1});
    CHECK(t.numel() == 24);
    CHECK(t.is_contiguous());
    CHECK_FALSE(t.transpose(0, 2).is_contiguous());
    CHECK(scalar_tensor(3.0).dim() == 0);
    CHECK(scalar_tensor(3.0).numel() == 1);
    CHECK(empty({0, 5}).numel() == 0);
}

TEST_CASE("views share storage; reshape copies only when it must", "[tensor]") {
    Tensor a = arange(24, DType::f32).reshape({2, 3, 4});
    Tensor v = a.view({6, 4});
    CHECK(v.storage() == a.storage());
    CHECK(v.to_vector<float>() == a.to_vector<float>());
    Tensor p = a.permute({2, 0, 1});
    CHECK(p.shape() == Shape{4, 2, 3});
    CHECK(p.strides() == Shape{1, 12, 4});
    CHECK(p.storage() == a.storage());
    // A permuted tensor cannot be viewed flat, so reshape copies.
    CHECK_THROWS_WITH(p.view({24}), Catch::Contains("cannot be viewed"));
    Tensor r = p.reshape({24});
    CHECK(r.storage() != a.storage());
    CHECK(r.to_vector<float>()[1] == 4.0f);  // p[0,0,1] = a[0,1,0]
    CHECK(a.view({-1, 4}).shape() == Shape{6, 4});
    CHECK_THROWS_WITH(a.view({5, -1}), Catch::Contains("cannot infer"));
}

TEST_CASE("slices, select, expand, squeeze and unsqueeze", "[tensor]") {
    Tensor a = arange(12, DType::i64).reshape({3, 4});
    Tensor s = a.slice(1, 1, 4, 2);  // columns 1 and 3
    CHECK(s.shape() == Shape{3, 2});
    CHECK(s.to_vector<int64_t>() == std::vector<int64_t>{1, 3, 5, 7, 9, 11});
    CHECK(a.slice(0, -2, 100).to_vector<int64_t>() == std::vector<int64_t>{4, 5, 6, 7, 8, 9, 10, 11});
    CHECK(a.select(1, -1).to_vector<int64_t>() == std::vector<int64_t>{3, 7, 11});
    Tensor row = a.select(0, 1).unsqueeze(0);
    CHECK(row.shape() == Shape{1, 4});
    Tensor e = row.expand({3, 4});
    CHECK(e.strides()[0] == 0);
    CHECK(e.to_vector<int64_t>() == std::vector<int64_t>{4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7});
    CHECK(row.squeeze(0).shape() == Shape{4});
    CHECK_THROWS_WITH(a.expand({3, 5}), Catch::Contains("cannot expand"));
    auto parts = split(a, 2, 0);
    REQUIRE(parts.size() == 2);
    CHECK(parts[1].shape() == Shape{1, 4});
}

TEST_CASE("copies convert dtypes and materialise strided views", "[tensor]") {
    Tensor a = from_vector<float>({1.5f, -2.5f, 3.0f, 4.75f}, {2, 2});
    CHECK(a.to(DType::i64).to_vector<int64_t>() == std::vector<int64_t>{1, -2, 3, 4});
    CHECK(a.to(DType::f64).to_vector<double>() == std::vector<double>{1.5, -2.5, 3.0, 4.75});
    Tensor t = a.t().contiguous();
    CHECK(t.is_contiguous());
    CHECK(t.to_vector<float>() == std::vector<float>{1.5f, 3.0f, -2.5f, 4.75f});
    Tensor c = a.clone();
    CHECK(c.storage() != a.storage());
    Tensor dst = zeros({2, 2});
    dst.copy_(from_vector<float>({7.0f, 8.0f}));  // broadcast over rows
    CHECK(dst.to_vector<float>() == std::vector<float>{7, 8, 7, 8});
}

TEST_CASE("item, fill_, add_, mul_ and printing", "[tensor]") {
    Tensor a = full({2, 2}, 2.5);
    CHECK(a.select(0, 1).select(0, 0).item<double>() == 2.5);
    a.fill_(1.0);
    a.add_(from_vector<float>({1.0f, 2.0f}), 2.0);
    CHECK(a.to_vector<float>() == std::vector<float>{3, 5, 3, 5});
    a.mul_(0.5);
    CHECK(a.to_vector<float>() == std::vector<float>{1.5, 2.5, 1.5, 2.5});
    CHECK_THROWS_WITH(a.item<float>(), Catch::Contains("4 elements"));
    CHECK(a.str().find("f32[2, 2] cpu {1.5, 2.5") == 0);
}

TEST_CASE("the CPU allocator counts bytes in use and the peak", "[tensor][alloc]") {
    Allocator& alloc = allocator_for(Device::cpu());
    const AllocatorStats before = alloc.stats();
    alloc.reset_peak();
    {
        Tensor big = empty({1000, 1000});
        CHECK(alloc.stats().in_use == before.in_use + 4000000);
        Tensor v = big.view({-1});  // views allocate nothing
        CHECK(alloc.stats().in_use == before.in_use + 4000000);
    }
    CHECK(alloc.stats().in_use == before.in_use);
    CHECK(alloc.stats().peak >= before.in_use + 4000000);
    CHECK(alloc.stats().allocs > before.allocs);
}

TEST_CASE("the CPU allocator keeps large freed blocks and hands them out again", "[tensor][alloc]") {
    Allocator& alloc = allocator_for(Device::cpu());
    alloc.empty_cache();
    void* first = nullptr;
    {
        Tensor big = empty({1000, 1000});  // 4 MB: cached when freed
        first = big.data_ptr();
        big.fill_(1.0);
    }
    // 4.0 MB is in the class of 4,000,000 bytes rounded to 1/8 of 2^21 (262,144): 4,194,304.
    CHECK(alloc.stats().cached == 4194304);
    {
        Tensor again = empty({1001, 999});  // 3,999,996 bytes: the same class, the same block
        CHECK(again.data_ptr() == first);
        CHECK(alloc.stats().cached == 0);
        Tensor other = empty({2000, 1000});  // another class: a new block
        CHECK(other.data_ptr() != first);
    }
    CHECK(alloc.stats().cached > 4194304);
    {
        Tensor small = empty({100});  // small blocks go straight back to malloc
    }
    const int64_t cached = alloc.stats().cached;
    alloc.empty_cache();
    CHECK(cached > 0);
    CHECK(alloc.stats().cached == 0);
}

TEST_CASE("devices parse and unavailable devices fail clearly", "[tensor]") {
    CHECK(Device::parse("cpu") == Device::cpu());
    CHECK(Device::parse("cuda:1") == Device::cuda(1));
    CHECK_THROWS_WITH(Device::parse("gpu"), Catch::Contains("unknown device 'gpu'"));
    if (cuda_device_count() == 0) {
        CHECK_THROWS_WITH(empty({2}, DType::f32, Device::cuda(0)), Catch::Contains("cuda"));
    }
}

TEST_CASE("the Philox generator is deterministic and positional", "[tensor][random]") {
    Generator g1(42, 7), g2(42, 7), g3(43, 7);
    Tensor a = g1.randn({1000}), b = g2.randn({1000}), c = g3.randn({1000});
    CHECK(a.to_vector<float>() == b.to_vector<float>());
    CHECK(a.to_vector<float>() != c.to_vector<float>());
    // Drawing 600 then 400 gives the same numbers as 1000 at once.
    Generator g4(42, 7);
    Tensor head = g4.randn({600}), tail = g4.randn({400});
    CHECK(cat({head, tail}).to_vector<float>() == a.to_vector<float>());
    const double m = mean(a.to(DType::f64)).item<double>();
    const double v = mean(pow(a.to(DType::f64) - m, 2.0)).item<double>();
    CHECK(std::fabs(m) < 0.1);
    CHECK(std::fabs(v - 1.0) < 0.1);
    Generator gp(5);
    auto perm = gp.permutation(50);
    std::vector<int64_t> sorted = perm;
    std::sort(sorted.begin(), sorted.end());
    for (int64_t i = 0; i < 50; ++i) CHECK(sorted[size_t(i)] == i);
}
