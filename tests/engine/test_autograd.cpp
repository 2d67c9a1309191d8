// The autograd engine: accumulation, no-grad, detach, freeing, version checks, fan-out.
#include <catch2/catch.hpp>

#include "engine/autograd/grad_mode.h"
#include "engine/ops/ops.h"

using namespace hpt;

TEST_CASE("gradients of a shared input add up; leaf grads accumulate across backward calls", "[autograd]") {
    Tensor x = from_vector<double>({1.0, 2.0, 3.0}).requires_grad_();
    Tensor y = sum(x * x + x * 3.0);  // dy/dx = 2x + 3
    y.backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{5, 7, 9});
    sum(x * 2.0).backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{7, 9, 11});
}

TEST_CASE("no-grad scopes and detach record nothing", "[autograd]") {
    Tensor x = from_vector<double>({1.0, 2.0}).requires_grad_();
    {
        NoGradGuard ng;
        Tensor y = x * 2.0;
        CHECK_FALSE(y.requires_grad());
        CHECK(y.grad_fn() == nullptr);
    }
    Tensor d = x.detach();
    CHECK_FALSE(d.requires_grad());
    CHECK(d.storage() == x.storage());
    CHECK_THROWS_WITH(sum(d * 2.0).backward(), Catch::Contains("does not require grad"));
}

TEST_CASE("the graph is freed after backward unless retained", "[autograd]") {
    Tensor x = from_vector<double>({1.0, 2.0}).requires_grad_();
    Tensor y = sum(exp(x));
    y.backward(Tensor(), /*retain_graph=*/true);
    y.backward();
    CHECK(x.grad().to_vector<double>()[0] == Approx(2 * std::exp(1.0)));
    CHECK_THROWS_WITH(y.backward(), Catch::Contains("second time"));
}

TEST_CASE("modifying a saved tensor in place is detected at backward", "[autograd]") {
    Tensor w = from_vector<double>({1.0, 2.0}).requires_grad_();
    Tensor a = from_vector<double>({3.0, 4.0});
    Tensor y = sum(w * a);  // saves a
    a.fill_(0.0);
    CHECK_THROWS_WITH(y.backward(), Catch::Contains("modified in place"));
}

TEST_CASE("in-place ops on tensors that require grad are refused under grad mode", "[autograd]") {
    Tensor w = zeros({3}).requires_grad_();
    CHECK_THROWS_WITH(w.fill_(1.0), Catch::Contains("requires grad"));
    NoGradGuard ng;
    w.fill_(1.0);
    CHECK(w.to_vector<float>() == std::vector<float>{1, 1, 1});
}

TEST_CASE("views are differentiable: slice, permute, expand and reshape", "[autograd]") {
    Tensor x = arange(6, DType::f64).reshape({2, 3}).contiguous().requires_grad_();
    Tensor y = sum(x.slice(1, 1, 3).t().reshape({4}) * from_vector<double>({1, 2, 3, 4}));
    y.backward();
    // x.slice(1,1,3) = [[1,2],[4,5]]; transposed [[1,4],[2,5]] flattened -> weights [1,2,3,4]
    CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 1, 3, 0, 2, 4});
    Tensor b = from_vector<double>({1.0, 2.0}).requires_grad_();
    sum(b.unsqueeze(0).expand({3, 2})).backward();
    CHECK(b.grad().to_vector<double>() == std::vector<double>{3, 3});
}

TEST_CASE("outputs that get no gradient contribute zeros; integer outputs none", "[autograd]") {
    Tensor x = from_vector<double>({3.0, 1.0, 2.0, 5.0}, {2, 2}).requires_grad_();
    auto [values, indices] = max(x, 1);
    CHECK_FALSE(indices.requires_grad());
    sum(values).backward();
    CHECK(x.grad().to_vector<double>() == std::vector<double>{1, 0, 0, 1});
    Tensor z = from_vector<double>({1.0, 2.0, 3.0}).requires_grad_();
    auto parts = split(z, 2);
    sum(parts[0]).backward();  // parts[1] unused
    CHECK(z.grad().to_vector<double>() == std::vector<double>{1, 1, 0});
}

TEST_CASE("a backward formula's gradient of the wrong shape is caught", "[autograd]") {
    Tensor x = zeros({2, 3}).requires_grad_();
    Tensor y = x * 2.0;
    CHECK_THROWS_WITH(y.backward(zeros({3, 2})), Catch::Contains("does not match"));
}
