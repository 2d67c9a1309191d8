// Bad input throws hpt::Error (never aborts) with a message that names the op and the shapes,
// dtypes, devices or values involved.
#include <cstdint>
#include <catch2/catch.hpp>

#include <limits>

#include "engine/ops/ops.h"
#include "tests/support/devices.h"

using namespace hpt;
using Catch::Contains;

namespace {
Tensor f32(const Shape& s) { return zeros(s, DType::f32); }
Tensor f64(const Shape& s) { return zeros(s, DType::f64); }
Tensor i64(const std::vector<int64_t>& v) { return from_vector<int64_t>(v); }
}  // namespace

TEST_CASE("errors: every message carries the source location", "[errors]") {
    CHECK_THROWS_AS(add(f32({2, 3}), f32({4})), hpt::Error);
    CHECK_THROWS_WITH(add(f32({2, 3}), f32({4})), Contains("engine/") && Contains(".cpp:"));
}

TEST_CASE("errors: elementwise shapes that do not broadcast", "[errors]") {
    CHECK_THROWS_WITH(add(f32({2, 3}), f32({4})), Contains("op 'add'") && Contains("[2, 3]") && Contains("[4]"));
    CHECK_THROWS_WITH(f32({2, 3}) + f32({4}), Contains("op 'add'") && Contains("[2, 3]") && Contains("[4]"));
    CHECK_THROWS_WITH(sub(f32({3, 1, 2}), f32({2, 3})),
                      Contains("op 'sub'") && Contains("[3, 1, 2]") && Contains("[2, 3]"));
    CHECK_THROWS_WITH(mul(f32({5}), f32({4})), Contains("op 'mul'") && Contains("[5]") && Contains("[4]"));
    CHECK_THROWS_WITH(div(f32({2, 2}), f32({3, 2})), Contains("op 'div'") && Contains("[2, 2]") && Contains("[3, 2]"));
    CHECK_THROWS_WITH(pow(f32({2}), f32({3})), Contains("op 'pow'") && Contains("[2]") && Contains("[3]"));
    CHECK_THROWS_WITH(eq(f32({2}), f32({3})), Contains("op 'eq'") && Contains("[2]") && Contains("[3]"));
    const Tensor cond = zeros({2, 3}, DType::u8);
    CHECK_THROWS_WITH(where(cond, f32({2, 3}), f32({4})), Contains("op 'where'") && Contains("[4]"));
}

TEST_CASE("errors: mixed dtypes", "[errors]") {
    CHECK_THROWS_WITH(add(f32({2}), f64({2})), Contains("op 'add'") && Contains("f32[2]") && Contains("f64[2]"));
    CHECK_THROWS_WITH(f32({2}) * f64({2}), Contains("op 'mul'") && Contains("f32") && Contains("f64"));
    CHECK_THROWS_WITH(matmul(f32({2, 3}), f64({3, 2})),
                      Contains("op 'matmul'") && Contains("f32[2, 3]") && Contains("f64[3, 2]"));
    CHECK_THROWS_WITH(linear(f32({2, 3}), f64({4, 3})), Contains("op 'linear'") && Contains("f64[4, 3]"));
    CHECK_THROWS_WITH(conv2d(f32({1, 2, 4, 4}), f64({3, 2, 3, 3})), Contains("op 'conv2d'") && Contains("f64[3, 2, 3, 3]"));
    CHECK_THROWS_WITH(cat({f32({2, 3}), f64({2, 3})}), Contains("op 'cat'") && Contains("f32") && Contains("f64"));
    CHECK_THROWS_WITH(where(zeros({2}, DType::u8), f32({2}), f64({2})), Contains("op 'where'") && Contains("f64"));
    CHECK_THROWS_WITH(where(f32({2}), f32({2}), f32({2})), Contains("op 'where'") && Contains("u8"));
    CHECK_THROWS_WITH(batchnorm2d(f32({2, 3, 2, 2}), f64({3}), Tensor(), Tensor(), Tensor(), BatchNormAttrs{}),
                      Contains("op 'batchnorm2d'") && Contains("f64[3]"));
}

TEST_CASE("errors: floating-point-only ops refuse integer tensors", "[errors]") {
    const Tensor ix = zeros({2, 3}, DType::i64);
    CHECK_THROWS_WITH(exp(ix), Contains("op 'exp'") && Contains("i64[2, 3]"));
    CHECK_THROWS_WITH(log(ix), Contains("op 'log'") && Contains("i64"));
    CHECK_THROWS_WITH(mean(ix), Contains("op 'mean'") && Contains("i64"));
    CHECK_THROWS_WITH(softmax(ix, 1), Contains("op 'softmax'") && Contains("i64"));
    CHECK_THROWS_WITH(matmul(ix, zeros({3, 2}, DType::i64)), Contains("op 'matmul'") && Contains("i64[2, 3]"));
    CHECK_THROWS_WITH(linear(ix, zeros({4, 3}, DType::i64)), Contains("op 'linear'") && Contains("i64[2, 3]"));
    CHECK_THROWS_WITH(conv2d(zeros({1, 1, 3, 3}, DType::i64), zeros({1, 1, 1, 1}, DType::i64)),
                      Contains("op 'conv2d'") && Contains("i64"));
    CHECK_THROWS_WITH(max_pool2d(zeros({1, 1, 4, 4}, DType::i64), Pool2dAttrs{}), Contains("op 'max_pool2d'") && Contains("i64"));
}

TEST_CASE("errors: requires_grad on an integer tensor", "[errors]") {
    Tensor t = zeros({3}, DType::i64);
    CHECK_THROWS_AS(t.requires_grad_(), hpt::Error);
    CHECK_THROWS_WITH(t.requires_grad_(), Contains("requires_grad") && Contains("i64"));
    Tensor u = zeros({3}, DType::u8);
    CHECK_THROWS_WITH(u.requires_grad_(), Contains("requires_grad") && Contains("u8"));
    CHECK_FALSE(t.requires_grad());
}

TEST_CASE("errors: matmul shapes", "[errors]") {
    CHECK_THROWS_WITH(matmul(f32({2, 3}), f32({4, 5})),
                      Contains("op 'matmul'") && Contains("[2, 3]") && Contains("[4, 5]") && Contains("inner"));
    CHECK_THROWS_WITH(matmul(f32({2, 3, 4}), f32({3, 4, 5})),
                      Contains("op 'matmul'") && Contains("[2, 3, 4]") && Contains("[3, 4, 5]") && Contains("batch"));
    CHECK_THROWS_WITH(matmul(f32({2, 3}), f32({2, 3, 4})), Contains("op 'matmul'") && Contains("[2, 3, 4]"));
    CHECK_THROWS_WITH(matmul(f32({3}), f32({3})), Contains("op 'matmul'") && Contains("[3]"));
}

TEST_CASE("errors: linear shapes", "[errors]") {
    CHECK_THROWS_WITH(linear(f32({2, 3}), f32({4, 5})),
                      Contains("op 'linear'") && Contains("[2, 3]") && Contains("[4, 5]"));
    CHECK_THROWS_WITH(linear(f32({2, 3}), f32({4, 3}), f32({5})),
                      Contains("op 'linear'") && Contains("[5]") && Contains("[4, 3]"));
    CHECK_THROWS_WITH(linear(f32({2, 3}), f32({3})), Contains("op 'linear'") && Contains("[3]"));
    CHECK_THROWS_WITH(linear(f32({}), f32({4, 3})), Contains("op 'linear'"));
}

TEST_CASE("errors: conv2d shapes and parameters", "[errors]") {
    SECTION("channel mismatch") {
        CHECK_THROWS_WITH(conv2d(f32({1, 3, 8, 8}), f32({4, 2, 3, 3})),
                          Contains("op 'conv2d'") && Contains("[1, 3, 8, 8]") && Contains("[4, 2, 3, 3]"));
    }
    SECTION("groups not dividing the channels") {
        Conv2dAttrs p;
        p.groups = 3;
        CHECK_THROWS_WITH(conv2d(f32({1, 4, 8, 8}), f32({4, 2, 3, 3}), Tensor(), p),
                          Contains("op 'conv2d'") && Contains("groups=3") && Contains("[1, 4, 8, 8]") &&
                              Contains("[4, 2, 3, 3]"));
        p.groups = 2;  // divides the input channels but not the 3 output channels
        CHECK_THROWS_WITH(conv2d(f32({1, 4, 8, 8}), f32({3, 2, 3, 3}), Tensor(), p),
                          Contains("op 'conv2d'") && Contains("groups=2") && Contains("[3, 2, 3, 3]"));
        p.groups = 0;
        CHECK_THROWS_WITH(conv2d(f32({1, 4, 8, 8}), f32({4, 4, 3, 3}), Tensor(), p),
                          Contains("op 'conv2d'") && Contains("groups=0"));
    }
    SECTION("input smaller than the kernel") {
        CHECK_THROWS_WITH(conv2d(f32({1, 2, 2, 2}), f32({3, 2, 3, 3})),
                          Contains("op 'conv2d'") && Contains("[1, 2, 2, 2]") && Contains("[3, 2, 3, 3]") &&
                              Contains("smaller"));
        Conv2dAttrs s2;
        s2.stride[0] = s2.stride[1] = 2;  // (2 - 3) / 2 + 1 truncates to 1 in C++: must still throw
        CHECK_THROWS_WITH(conv2d(f32({1, 2, 2, 2}), f32({3, 2, 3, 3}), Tensor(), s2),
                          Contains("op 'conv2d'") && Contains("[1, 2, 2, 2]") && Contains("smaller"));
        Conv2dAttrs p;
        p.dilation[0] = p.dilation[1] = 3;  // a 3x3 kernel with dilation 3 spans 7x7
        CHECK_THROWS_WITH(conv2d(f32({1, 2, 6, 6}), f32({3, 2, 3, 3}), Tensor(), p),
                          Contains("op 'conv2d'") && Contains("[1, 2, 6, 6]") && Contains("smaller"));
    }
    SECTION("ranks") {
        CHECK_THROWS_WITH(conv2d(f32({2, 8, 8}), f32({4, 2, 3, 3})), Contains("op 'conv2d'") && Contains("[2, 8, 8]"));
        CHECK_THROWS_WITH(conv2d(f32({1, 2, 8, 8}), f32({4, 2, 3})), Contains("op 'conv2d'") && Contains("[4, 2, 3]"));
    }
    SECTION("bias, stride, padding") {
        CHECK_THROWS_WITH(conv2d(f32({1, 2, 8, 8}), f32({4, 2, 3, 3}), f32({3})),
                          Contains("op 'conv2d'") && Contains("[3]") && Contains("[4, 2, 3, 3]"));
        Conv2dAttrs p;
        p.stride[1] = 0;
        CHECK_THROWS_WITH(conv2d(f32({1, 2, 8, 8}), f32({4, 2, 3, 3}), Tensor(), p),
                          Contains("op 'conv2d'") && Contains("stride 0"));
        Conv2dAttrs q;
        q.padding[0] = -1;
        CHECK_THROWS_WITH(conv2d(f32({1, 2, 8, 8}), f32({4, 2, 3, 3}), Tensor(), q),
                          Contains("op 'conv2d'") && Contains("padding -1"));
    }
    SECTION("undefined weight") {
        CHECK_THROWS_WITH(conv2d(f32({1, 2, 8, 8}), Tensor()), Contains("op 'conv2d'") && Contains("undefined"));
    }
}

TEST_CASE("errors: batchnorm2d", "[errors]") {
    BatchNormAttrs p;
    SECTION("a batch not divisible by the groups") {
        p.groups = 4;
        CHECK_THROWS_WITH(batchnorm2d(f32({6, 3, 2, 2}), Tensor(), Tensor(), Tensor(), Tensor(), p),
                          Contains("op 'batchnorm2d'") && Contains("[6, 3, 2, 2]") && Contains("4"));
        p.groups = 0;
        CHECK_THROWS_WITH(batchnorm2d(f32({6, 3, 2, 2}), Tensor(), Tensor(), Tensor(), Tensor(), p),
                          Contains("op 'batchnorm2d'") && Contains("[6, 3, 2, 2]"));
    }
    SECTION("one value per channel and group in training") {
        p.groups = 2;
        CHECK_THROWS_WITH(batchnorm2d(f32({2, 3, 1, 1}), Tensor(), Tensor(), Tensor(), Tensor(), p),
                          Contains("op 'batchnorm2d'") && Contains("[2, 3, 1, 1]"));
    }
    SECTION("parameters that do not match the channels") {
        CHECK_THROWS_WITH(batchnorm2d(f32({2, 3, 2, 2}), f32({4}), Tensor(), Tensor(), Tensor(), p),
                          Contains("op 'batchnorm2d'") && Contains("[4]") && Contains("[2, 3, 2, 2]"));
        CHECK_THROWS_WITH(batchnorm2d(f32({2, 3, 2, 2}), Tensor(), Tensor(), f32({3}), Tensor(), p),
                          Contains("op 'batchnorm2d'") && Contains("running_var"));
    }
    SECTION("eval mode without running statistics, wrong rank") {
        p.training = false;
        CHECK_THROWS_WITH(batchnorm2d(f32({2, 3, 2, 2}), Tensor(), Tensor(), Tensor(), Tensor(), p),
                          Contains("op 'batchnorm2d'") && Contains("running"));
        CHECK_THROWS_WITH(batchnorm2d(f32({2, 3, 4}), Tensor(), Tensor(), f32({3}), f32({3}), p),
                          Contains("op 'batchnorm2d'") && Contains("[2, 3, 4]"));
    }
}

TEST_CASE("errors: pooling", "[errors]") {
    Pool2dAttrs p;
    p.kernel[0] = p.kernel[1] = 3;
    CHECK_THROWS_WITH(max_pool2d(f32({1, 1, 2, 2}), p),
                      Contains("op 'max_pool2d'") && Contains("[1, 1, 2, 2]") && Contains("smaller"));
    CHECK_THROWS_WITH(avg_pool2d(f32({1, 1, 2, 5}), p), Contains("op 'avg_pool2d'") && Contains("[1, 1, 2, 5]"));
    p.stride[0] = p.stride[1] = 1;
    CHECK_THROWS_WITH(max_pool2d(f32({1, 1, 5, 2}), p), Contains("op 'max_pool2d'") && Contains("[1, 1, 5, 2]"));
    p.stride[0] = p.stride[1] = 2;
    p.padding[0] = 2;  // more than half the kernel
    CHECK_THROWS_WITH(avg_pool2d(f32({1, 1, 8, 8}), p), Contains("op 'avg_pool2d'") && Contains("padding 2"));
    CHECK_THROWS_WITH(max_pool2d(f32({1, 8, 8}), Pool2dAttrs{}), Contains("op 'max_pool2d'") && Contains("[1, 8, 8]"));
    CHECK_THROWS_WITH(adaptive_avg_pool2d(f32({1, 1, 4, 4}), 0, 2),
                      Contains("op 'adaptive_avg_pool2d'") && Contains("0x2"));
    CHECK_THROWS_WITH(adaptive_avg_pool2d(f32({4, 4}), 2, 2), Contains("op 'adaptive_avg_pool2d'") && Contains("[4, 4]"));
    CHECK_THROWS_WITH(adaptive_avg_pool2d(f32({1, 1, 0, 4}), 2, 2),
                      Contains("op 'adaptive_avg_pool2d'") && Contains("[1, 1, 0, 4]"));
}

TEST_CASE("errors: cross_entropy", "[errors]") {
    const Tensor logits = f32({3, 4});
    SECTION("a target out of range names the bad value") {
        CHECK_THROWS_WITH(cross_entropy(logits, i64({0, 7, 1})),
                          Contains("op 'cross_entropy'") && Contains("7") && Contains("[0, 4)"));
        CHECK_THROWS_WITH(cross_entropy(logits, i64({0, 1, -1})), Contains("op 'cross_entropy'") && Contains("-1"));
        CHECK_THROWS_WITH(cross_entropy(logits, i64({4, 1, 2})), Contains("op 'cross_entropy'") && Contains("= 4"));
    }
    SECTION("shapes and dtypes") {
        CHECK_THROWS_WITH(cross_entropy(logits, i64({0, 1})),
                          Contains("op 'cross_entropy'") && Contains("[3, 4]") && Contains("2 targets"));
        CHECK_THROWS_WITH(cross_entropy(logits, from_vector<int32_t>({0, 1, 2})),
                          Contains("op 'cross_entropy'") && Contains("i64") && Contains("i32[3]"));
        CHECK_THROWS_WITH(cross_entropy(f32({3, 4, 1}), i64({0, 1, 2})),
                          Contains("op 'cross_entropy'") && Contains("[3, 4, 1]"));
        CHECK_THROWS_WITH(cross_entropy(logits, zeros({3, 1}, DType::i64)),
                          Contains("op 'cross_entropy'") && Contains("[3, 1]"));
    }
}

TEST_CASE("errors: indexing", "[errors]") {
    const Tensor x = f32({4, 3});
    SECTION("index_select index out of range") {
        CHECK_THROWS_WITH(index_select(x, 0, i64({1, 4})),
                          Contains("op 'index_select'") && Contains("index 4") && Contains("[0, 4)"));
        CHECK_THROWS_WITH(index_select(x, 1, i64({-1})), Contains("op 'index_select'") && Contains("index -1"));
        CHECK_THROWS_WITH(index_select(x, 2, i64({0})), Contains("op 'index_select'") && Contains("dim 2"));
    }
    SECTION("index_select index dtype and rank") {
        CHECK_THROWS_WITH(index_select(x, 0, f32({2})), Contains("op 'index_select'") && Contains("f32[2]"));
        CHECK_THROWS_WITH(index_select(x, 0, zeros({2, 1}, DType::i64)),
                          Contains("op 'index_select'") && Contains("[2, 1]"));
    }
    SECTION("gather") {
        const Tensor idx = from_vector<int64_t>({0, 3, 1, 1}, {2, 2});
        CHECK_THROWS_WITH(gather(x, 1, idx), Contains("op 'gather'") && Contains("index 3") && Contains("[0, 3)"));
        CHECK_THROWS_WITH(gather(x, 1, i64({0})), Contains("op 'gather'") && Contains("[1]") && Contains("[4, 3]"));
        CHECK_THROWS_WITH(gather(x, 1, zeros({5, 1}, DType::i64)),
                          Contains("op 'gather'") && Contains("[5, 1]") && Contains("[4, 3]"));
    }
}

TEST_CASE("errors: cat", "[errors]") {
    CHECK_THROWS_WITH(cat({f32({2, 3}), f32({2, 4})}, 0),
                      Contains("op 'cat'") && Contains("[2, 3]") && Contains("[2, 4]"));
    CHECK_THROWS_WITH(cat({f32({2, 3}), f32({2, 3}), f32({2, 3, 1})}, 1),
                      Contains("op 'cat'") && Contains("tensor 2") && Contains("[2, 3, 1]"));
    CHECK_THROWS_WITH(cat({}, 0), Contains("op 'cat'"));
    CHECK_THROWS_WITH(cat({f32({2, 3}), Tensor()}, 0), Contains("op 'cat'") && Contains("undefined"));
    CHECK_THROWS_WITH(cat({f32({2, 3})}, 2), Contains("op 'cat'") && Contains("dim 2"));
    CHECK_THROWS_WITH(cat({f32({}), f32({})}, 0), Contains("op 'cat'") && Contains("0-dim"));
}

TEST_CASE("errors: reshape, view and the other views", "[errors]") {
    const Tensor x = f32({2, 3});
    CHECK_THROWS_WITH(x.reshape({4, 2}),
                      Contains("op 'reshape'") && Contains("[4, 2]") && Contains("6 elements") && Contains("[2, 3]"));
    CHECK_THROWS_WITH(x.reshape({-1, 4}), Contains("op 'reshape'") && Contains("[-1, 4]") && Contains("[2, 3]"));
    CHECK_THROWS_WITH(x.reshape({-1, -1}), Contains("op 'reshape'") && Contains("-1"));
    CHECK_THROWS_WITH(x.view({7}), Contains("op 'view'") && Contains("[7]"));
    CHECK_THROWS_WITH(x.t().view({6}), Contains("op 'view'") && Contains("[3, 2]") && Contains("reshape"));
    CHECK(x.t().reshape({6}).shape() == Shape{6});  // reshape copies where a view is impossible
    CHECK_THROWS_WITH(x.permute({0}), Contains("op 'permute'") && Contains("[2, 3]"));
    CHECK_THROWS_WITH(x.permute({0, 0}), Contains("op 'permute'") && Contains("repeated"));
    CHECK_THROWS_WITH(x.expand({4, 3}), Contains("op 'expand'") && Contains("[2, 3]") && Contains("[4, 3]"));
    CHECK_THROWS_WITH(x.expand({3}), Contains("op 'expand'") && Contains("[2, 3]"));
    CHECK_THROWS_WITH(f32({1, 3}).expand({-2, 3}), Contains("op 'expand'") && Contains("[-2, 3]"));
    CHECK_THROWS_WITH(f32({3}).expand({-1, 3}), Contains("op 'expand'") && Contains("-1"));
    CHECK_THROWS_WITH(x.slice(2, 0, 1), Contains("op 'slice'") && Contains("dim 2"));
    CHECK_THROWS_WITH(x.slice(1, 0, 2, 0), Contains("op 'slice'") && Contains("step 0"));
    CHECK_THROWS_WITH(x.select(0, 2), Contains("op 'select'") && Contains("index 2") && Contains("[2, 3]"));
    CHECK_THROWS_WITH(split(x, {1, 1}, 1), Contains("op 'split'") && Contains("[2, 3]"));
    CHECK_THROWS_WITH(split(x, 0, 1), Contains("op 'split'"));
    CHECK_THROWS_WITH(x.transpose(0, 2), Contains("op 'transpose'") && Contains("dim 2"));
}

TEST_CASE("errors: 0-dim tensors in ops that need a dimension", "[errors]") {
    const Tensor s = f32({});
    CHECK_THROWS_WITH(s.size(0), Contains("[]"));
    CHECK_THROWS_WITH(s.slice(0, 0, 1), Contains("op 'slice'") && Contains("0-dim"));
    CHECK_THROWS_WITH(s.select(0, 0), Contains("op 'select'") && Contains("0-dim"));
    CHECK_THROWS_WITH(split(s, 1, 0), Contains("op 'split'") && Contains("0-dim"));
    CHECK_THROWS_WITH(index_select(s, 0, i64({0})), Contains("op 'index_select'") && Contains("0-dim"));
    CHECK(s.squeeze(0).dim() == 0);
    CHECK(s.transpose(0, -1).dim() == 0);
}

TEST_CASE("errors: reductions and softmax dims", "[errors]") {
    const Tensor x = f32({2, 3});
    CHECK_THROWS_WITH(sum(x, {2}), Contains("op 'sum'") && Contains("dim 2") && Contains("rank 2"));
    CHECK_THROWS_WITH(sum(x, {1, -1}), Contains("op 'sum'") && Contains("repeated"));
    CHECK_THROWS_WITH(mean(x, {-3}), Contains("op 'mean'") && Contains("dim -3"));
    CHECK_THROWS_WITH(max(x, 2), Contains("op 'max'") && Contains("dim 2"));
    CHECK_THROWS_WITH(max(f32({0, 3}), 0), Contains("op 'max'") && Contains("[0, 3]"));
    CHECK_THROWS_WITH(argmax(x, -3), Contains("op 'argmax'") && Contains("dim -3"));
    CHECK_THROWS_WITH(softmax(x, 2), Contains("op 'softmax'") && Contains("dim 2"));
    CHECK_THROWS_WITH(log_softmax(x, -3), Contains("op 'log_softmax'") && Contains("dim -3"));
    CHECK_THROWS_WITH(l2_normalize(x, 2), Contains("op 'l2_normalize'") && Contains("dim 2"));
    CHECK_THROWS_WITH(l2_normalize(x, 1, 0.0), Contains("op 'l2_normalize'") && Contains("eps"));
}

TEST_CASE("errors: other argument checks", "[errors]") {
    CHECK_THROWS_WITH(clamp(f32({2}), 1.0, -1.0), Contains("op 'clamp'") && Contains("min 1") && Contains("max -1"));
    CHECK_THROWS_WITH(add(f32({2}), Tensor()), Contains("op 'add'") && Contains("undefined"));
    CHECK_THROWS_WITH(f32({2, 3}).item<float>(), Contains("item()") && Contains("[2, 3]"));
    CHECK_THROWS_WITH(empty({2, -1}), Contains("[2, -1]"));
    CHECK_THROWS_WITH(from_vector<float>({1, 2, 3}, {2, 2}), Contains("3 values") && Contains("[2, 2]"));
    CHECK_THROWS_WITH(Device::parse("gpu"), Contains("gpu"));
    Tensor p = f32({3}), g = f32({4}), b = f32({3});
    CHECK_THROWS_WITH(sgd_step(p, g, b, SgdAttrs{}), Contains("op 'sgd_step'") && Contains("[4]"));
}

TEST_CASE("errors: backward misuse", "[errors]") {
    Tensor x = from_vector<double>({1.0, 2.0}).requires_grad_();
    Tensor y = x * 2.0;
    CHECK_THROWS_WITH(y.backward(), Contains("single-element") && Contains("[2]"));
    CHECK_THROWS_WITH(y.backward(zeros({3}, DType::f64)), Contains("[3]") && Contains("[2]"));
    CHECK_THROWS_WITH(y.backward(zeros({2}, DType::f32)), Contains("backward()") && Contains("f32[2]") && Contains("f64[2]"));
    CHECK_THROWS_WITH(x.fill_(0.0), Contains("requires grad"));
    CHECK_THROWS_WITH(y.requires_grad_(false), Contains("non-leaf"));
}

TEST_CASE("errors: a tensor on cuda:0 mixed with a CPU tensor", "[errors]") {
    const Tensor host = f32({2, 3});
    Tensor dev;
    try {
        dev = zeros({2, 3}, DType::f32, Device::cuda(0));
    } catch (const hpt::Error& e) {
        // No GPU, or no CUDA backend in this build: creating the tensor already fails, naming it.
        CHECK_THAT(e.what(), Contains("cuda:0"));
        CHECK_THROWS_WITH(host.to(Device::cuda(0)), Contains("cuda:0"));
        CHECK_THROWS_WITH(empty({1}, DType::f64, Device::cuda(3)), Contains("cuda:3"));
        return;
    }
    REQUIRE(hpt::test::cuda_available());
    CHECK_THROWS_WITH(add(dev, host), Contains("op 'add'") && Contains("different devices") && Contains("cuda:0") &&
                                          Contains("cpu") && Contains("[2, 3]"));
    CHECK_THROWS_WITH(matmul(dev, host.t()), Contains("op 'matmul'") && Contains("cuda:0") && Contains("cpu"));
    CHECK_THROWS_WITH(cat({host, dev}), Contains("op 'cat'") && Contains("cuda:0") && Contains("cpu"));
    CHECK_THROWS_WITH(conv2d(zeros({1, 1, 3, 3}, DType::f32, Device::cuda(0)), f32({1, 1, 1, 1})),
                      Contains("op 'conv2d'") && Contains("cuda:0") && Contains("cpu"));
    CHECK_THROWS_WITH(empty({1}, DType::f32, Device::cuda(hpt::cuda_device_count())),
                      Contains(str("cuda:", hpt::cuda_device_count())));
}

TEST_CASE("errors: the device check runs before any kernel, also on machines without a GPU", "[errors]") {
    // A tensor that only claims to live on cuda:0 (its memory is host memory no kernel touches):
    // every op must refuse it next to a CPU tensor before dispatching, naming both devices.
    std::vector<float> mem(6, 1.f);
    const Tensor fake = from_blob(mem.data(), {2, 3}, DType::f32, Device::cuda(0));
    const Tensor host = f32({2, 3});
    CHECK_THROWS_WITH(add(fake, host), Contains("op 'add'") && Contains("different devices") && Contains("cuda:0") &&
                                           Contains("cpu") && Contains("[2, 3]"));
    CHECK_THROWS_WITH(mul(host, fake), Contains("op 'mul'") && Contains("cuda:0") && Contains("cpu"));
    CHECK_THROWS_WITH(matmul(fake, host.t()), Contains("op 'matmul'") && Contains("cuda:0") && Contains("cpu"));
    CHECK_THROWS_WITH(cat({host, fake}), Contains("op 'cat'") && Contains("cuda:0") && Contains("cpu"));
    CHECK_THROWS_WITH(where(ones({2, 3}, DType::u8), fake, host), Contains("op 'where'") && Contains("cuda:0"));
    CHECK_THROWS_WITH(index_select(fake, 0, from_vector<int64_t>({0})), Contains("op 'index_select'") && Contains("cuda:0"));
}

TEST_CASE("errors: no CUDA device means creating a CUDA tensor throws", "[errors]") {
    if (hpt::test::cuda_available()) return;
    CHECK_THROWS_AS(zeros({2}, DType::f32, Device::cuda(0)), hpt::Error);
    CHECK_THROWS_WITH(zeros({2}, DType::f32, Device::cuda(0)), Contains("cuda:0"));
}
