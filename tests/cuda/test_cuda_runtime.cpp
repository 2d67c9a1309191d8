// The CUDA runtime layer: the caching allocator, out-of-memory messages, host<->device transfers,
// deferred bad-index errors, the TF32 and determinism switches, events, streams and bit-equal
// random numbers. Op values are tested against the CPU by tests/kernels and tests/nn.
//
// Every [cuda] case returns with a warning when no GPU is visible (ctest reports the whole cuda
// entry as skipped, see tests/support/main.cpp). The cases without the tag run everywhere.
#include <cstdint>
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "engine/autograd/grad_mode.h"
#include "engine/core/random.h"
#include "engine/ops/ops.h"
#include "engine/ops/registry.h"
#include "tests/support/compare.h"
#include "tests/support/switches.h"
#include "tests/support/devices.h"

#ifdef HPT_WITH_CUDA
#include "kernels/cuda/check.h"
#include "kernels/cuda/runtime.h"
#endif

using namespace hpt;
using Catch::Matchers::Contains;

#ifndef HPT_WITH_CUDA

TEST_CASE("cuda runtime: this build has no CUDA backend", "[cuda_api]") {
    WARN("skipped: hpt was built without CUDA (HPT_CUDA=OFF)");
}

#else

namespace {

// Restores both global switches at the end of a test that flips them, also when a check throws.
struct SwitchGuard {
    test::Tf32Scope tf32{cuda_tf32()};
    test::DeterministicScope det{cuda_deterministic()};
};

Tensor values_of(DType t, const Shape& s) {
    std::vector<double> v(size_t(shape_numel(s)));
    for (size_t i = 0; i < v.size(); ++i) v[i] = double((i * 37) % 200) - (t == DType::u8 ? 0.0 : 100.0);
    return from_vector<double>(v, s).to(t);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
    const std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
    double m = 0.0;
    for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::fabs(va[i] - vb[i]));
    return m;
}

void check_equal(const Tensor& a, const Tensor& b) {
    REQUIRE(a.shape() == b.shape());
    CHECK(a.to_vector<double>() == b.to_vector<double>());
}

}  // namespace

// ---------------------------------------------------------------- runs without a GPU

TEST_CASE("cuda runtime: switches and the missing-device message", "[cuda_api]") {
    SwitchGuard g;
    set_cuda_tf32(true);
    CHECK(cuda_tf32());
    set_cuda_tf32(false);
    CHECK_FALSE(cuda_tf32());
    set_cuda_deterministic(true);
    CHECK(cuda_deterministic());
    CHECK(cuda::cudnn_workspace_limit() > 0);
    const int n = cuda_device_count();
    CHECK_THROWS_WITH(empty({4}, DType::f32, Device::cuda(n + 2)),
                      Contains(str("cuda:", n + 2, " requested but only ", n, " CUDA device(s) visible")));
}

TEST_CASE("cuda check family: a failing status names the call, the status, file and line", "[cuda_api]") {
    // No GPU needed: the runtime reports an invalid argument without touching a device.
    try {
        HPT_CUDA_CHECK(cudaMemcpy(nullptr, nullptr, 1, cudaMemcpyKind(12345)));
        FAIL("no error");
    } catch (const hpt::Error& e) {
        const std::string m = e.what();
        CHECK_THAT(m, Contains("cudaMemcpy(nullptr, nullptr, 1, cudaMemcpyKind(12345))"));
        CHECK_THAT(m, Contains("cudaError"));
        CHECK_THAT(m, Contains("test_cuda_runtime.cpp:"));
    }
    try {
        HPT_CUDA_CHECK(CUBLAS_STATUS_INVALID_VALUE);
        FAIL("no error");
    } catch (const hpt::Error& e) {
        CHECK_THAT(e.what(), Contains("CUBLAS_STATUS_INVALID_VALUE") && Contains("test_cuda_runtime.cpp:"));
    }
}

TEST_CASE("cuda op table: every non-view op has a CUDA kernel", "[cuda_api]") {
    // The CUDA backend claims every engine op (issue 4); a new op without a CUDA kernel fails here,
    // in CI, without a GPU.
    int checked = 0;
    for (int i = 0; i < kNumOps; ++i) {
        const OpId op = OpId(i);
        if (op_info(op).kind == OpKind::View) continue;
        INFO("op '" << op_name(op) << "' has no CUDA kernel (HPT_REGISTER_CUDA_KERNEL in kernels/cuda/)");
        CHECK(find_kernel(op, DeviceType::cuda) != nullptr);
        ++checked;
    }
    CHECK(checked > 30);
}

// ---------------------------------------------------------------- allocator

TEST_CASE("cuda allocator: in use, cached, peak and reuse without cudaMalloc", "[cuda]") {
    HPT_NEED_GPU();
    cuda::synchronize(0);
    const auto s0 = cuda::memory_stats(0);
    const int64_t bytes = int64_t(4) << 20;  // a large-pool block, a whole 4 MiB segment
    {
        Tensor t = empty({bytes / 4}, DType::f32, Device::cuda(0));
        const auto s1 = cuda::memory_stats(0);
        CHECK(s1.base.in_use == s0.base.in_use + bytes);
        CHECK(s1.base.peak >= s1.base.in_use);
        CHECK(s1.base.allocs == s0.base.allocs + 1);
    }
    const auto s2 = cuda::memory_stats(0);
    CHECK(s2.base.in_use == s0.base.in_use);
    CHECK(s2.base.cached >= bytes);
    CHECK(s2.base.frees == s0.base.frees + 1);
    {
        Tensor again = empty({bytes / 4}, DType::f32, Device::cuda(0));
        CHECK(cuda::memory_stats(0).device_mallocs == s2.device_mallocs);  // the freed block came back
    }
    {
        // Small requests share 2 MiB segments: a thousand of them need at most a few cudaMallocs.
        std::vector<Tensor> small;
        for (int i = 0; i < 1000; ++i) small.push_back(empty({100}, DType::f32, Device::cuda(0)));
        CHECK(cuda::memory_stats(0).device_mallocs - s2.device_mallocs <= 2);
    }
    allocator_for(Device::cuda(0)).reset_peak();
    const auto s3 = cuda::memory_stats(0);
    CHECK(s3.base.peak == s3.base.in_use);
    cuda::empty_cache(0);
    const auto s4 = cuda::memory_stats(0);
    CHECK(s4.device_frees > s3.device_frees);
    CHECK(s4.reserved < s3.reserved);
    CHECK(s4.base.in_use == s3.base.in_use);
}

// [oom]: its failing cudaMalloc calls are the point, so the memcheck run leaves it out (the sanitizer
// would report them as API errors).
TEST_CASE("cuda allocator: out of memory names the request and the device's state", "[cuda][oom]") {
    HPT_NEED_GPU();
    const int64_t pib = int64_t(1) << 50;
    CHECK_THROWS_AS(empty({pib}, DType::u8, Device::cuda(0)), OutOfMemory);
    CHECK_THROWS_WITH(empty({pib}, DType::u8, Device::cuda(0)),
                      Contains("CUDA out of memory on cuda:0") && Contains("1.00 PiB") &&
                          Contains(std::to_string(pib) + " bytes") && Contains("hpt tensors hold") &&
                          Contains("cudaMemGetInfo"));
    // The allocator still works afterwards.
    Tensor t = full({16}, 2.0, DType::f32, Device::cuda(0));
    CHECK(sum(t).item<float>() == 32.f);
}

// ---------------------------------------------------------------- transfers

TEST_CASE("cuda copies: host<->device round trips of every dtype, contiguous and strided", "[cuda]") {
    HPT_NEED_GPU();
    const Device gpu = Device::cuda(0);
    for (DType t : {DType::f32, DType::f64, DType::bf16, DType::u8, DType::i32, DType::i64}) {
        INFO("dtype " << dtype_name(t));
        const Tensor h = values_of(t, {6, 10});
        const Tensor d = h.to(gpu);
        CHECK(d.device() == gpu);
        check_equal(d.cpu(), h);
        // Strided on either side: transposed and stepped views, to and from the device.
        check_equal(h.t().to(gpu).cpu(), h.t().contiguous());
        check_equal(d.t().cpu(), h.t().contiguous());
        check_equal(d.slice(1, 1, 9, 3).cpu(), h.slice(1, 1, 9, 3).contiguous());
        // Into a strided device destination, and a broadcast source.
        Tensor dst = zeros({10, 6}, t, gpu);
        {
            NoGradGuard ng;
            dst.t().copy_(h);
        }
        check_equal(dst.cpu(), h.t().contiguous());
        Tensor row = zeros({6, 10}, t, gpu);
        row.copy_(h.select(0, 2));
        check_equal(row.cpu(), h.select(0, 2).unsqueeze(0).expand({6, 10}).contiguous());
        // Device -> strided host destination.
        Tensor hdst = zeros({10, 6}, t);
        hdst.t().copy_(d);
        check_equal(hdst, h.t().contiguous());
    }
}

TEST_CASE("cuda copies: dtype conversion on and across devices, and pinned memory", "[cuda]") {
    HPT_NEED_GPU();
    const Device gpu = Device::cuda(0);
    const Tensor h = values_of(DType::f64, {5, 7});
    check_equal(h.to(gpu).to(DType::f32).cpu(), h.to(DType::f32));
    check_equal(h.to(gpu).to(DType::i32).to(DType::bf16).cpu(), h.to(DType::i32).to(DType::bf16));
    Tensor d32 = zeros({5, 7}, DType::f32, gpu);
    d32.copy_(h);  // f64 host -> f32 device
    check_equal(d32.cpu(), h.to(DType::f32));
    Tensor p = cuda::pinned_empty({5, 7}, DType::f64);
    CHECK(cuda::is_pinned(p.data_ptr()));
    CHECK_FALSE(cuda::is_pinned(h.data_ptr()));
    p.copy_(h);
    const Tensor back = p.to(gpu);
    Tensor p2 = cuda::pinned_empty({5, 7}, DType::f64);
    p2.copy_(back);
    check_equal(p2, h);
}

TEST_CASE("cuda ops: tensors on different devices are refused with both devices named", "[cuda]") {
    HPT_NEED_GPU();
    const Tensor d = ones({3}, DType::f32, Device::cuda(0));
    const Tensor h = ones({3}, DType::f32);
    CHECK_THROWS_WITH(add(d, h), Contains("op 'add'") && Contains("different devices") && Contains("cuda:0") &&
                                     Contains("cpu"));
    // A 0-dim CPU tensor is a number and may accompany a CUDA tensor.
    CHECK(sum(d * scalar_tensor(2.0)).item<float>() == 6.f);
}

// ---------------------------------------------------------------- deferred device errors

TEST_CASE("cuda errors: a bad index is reported at the next synchronisation", "[cuda]") {
    HPT_NEED_GPU();
    const Device gpu = Device::cuda(0);
    const Tensor x = values_of(DType::f32, {5, 3}).to(gpu);
    const Tensor bad = from_vector<int64_t>({0, 7, 2}).to(gpu);
    CHECK_THROWS_WITH([&] { index_select(x, 0, bad).cpu(); }(),
                      Contains("op 'index_select'") && Contains("index 7") && Contains("[0, 5)"));
    // Reported once: the error word is clear again.
    CHECK_NOTHROW(x.cpu());
    CHECK_NOTHROW(cuda::synchronize(0));
    const Tensor gidx = from_vector<int64_t>({0, 1, -4, 2, 0, 1}, {2, 3}).to(gpu);
    CHECK_THROWS_WITH([&] { gather(x.slice(0, 0, 2).contiguous(), 1, gidx).cpu(); }(),
                      Contains("op 'gather'") && Contains("-4"));
    const Tensor logits = values_of(DType::f32, {2, 3}).to(gpu);
    const Tensor targets = from_vector<int64_t>({1, 9}).to(gpu);
    CHECK_THROWS_WITH([&] { cross_entropy(logits, targets).item<float>(); }(),
                      Contains("op 'cross_entropy'") && Contains("target 9"));
    CHECK_NOTHROW(cuda::synchronize());
}

// ---------------------------------------------------------------- switches

TEST_CASE("cuda GEMM: TF32 is off by default and changes the result when on", "[cuda]") {
    HPT_NEED_GPU();
    SwitchGuard g;
    Generator gen(11, 0);
    const Tensor a = gen.randn({512, 512}, DType::f64), b = gen.randn({512, 512}, DType::f64);
    const Tensor ref = matmul(a, b);
    const Tensor a32 = a.to(DType::f32).to(Device::cuda(0)), b32 = b.to(DType::f32).to(Device::cuda(0));
    set_cuda_tf32(false);
    const Tensor plain = matmul(a32, b32).cpu();
    set_cuda_tf32(true);
    const Tensor tf32 = matmul(a32, b32).cpu();
    const double err_plain = max_abs_diff(plain, ref), err_tf32 = max_abs_diff(tf32, ref);
    INFO("max abs error vs f64: FP32 " << err_plain << ", TF32 " << err_tf32);
    CHECK(err_plain < 1e-3);          // FP32 sums of 512 products of O(1) values
    CHECK(err_tf32 > 4 * err_plain);  // TF32 keeps 10 mantissa bits of each operand
}

TEST_CASE("cuda conv2d: deterministic mode gives bitwise-equal repeated results", "[cuda]") {
    HPT_NEED_GPU();
    if (!supports(OpId::conv2d, DeviceType::cuda)) {
        WARN("skipped: this build has no cuDNN");
        return;
    }
    SwitchGuard g;
    set_cuda_deterministic(true);
    Generator gen(5, 0);
    const Device gpu = Device::cuda(0);
    auto run = [&] {
        Tensor x = gen.randn({8, 16, 20, 20}, DType::f32, gpu).requires_grad_();
        Tensor w = gen.randn({32, 16, 3, 3}, DType::f32, gpu).requires_grad_();
        Conv2dAttrs p;
        p.padding[0] = p.padding[1] = 1;
        Tensor y = conv2d(x, w, Tensor(), p);
        y.backward(ones(y.shape(), DType::f32, gpu));
        return std::vector<std::vector<float>>{y.to_vector<float>(), x.grad().to_vector<float>(),
                                               w.grad().to_vector<float>()};
    };
    gen.set_position(0);
    const auto first = run();
    gen.set_position(0);
    const auto second = run();
    CHECK(first[0] == second[0]);
    CHECK(first[1] == second[1]);
    CHECK(first[2] == second[2]);
}

// ---------------------------------------------------------------- random numbers, events, streams

TEST_CASE("cuda fill_random: the same bits as the CPU", "[cuda]") {
    HPT_NEED_GPU();
    for (DType t : {DType::f32, DType::f64, DType::bf16}) {
        INFO("dtype " << dtype_name(t));
        Generator gc(123, 4), gg(123, 4);
        check_equal(gg.randn({1000, 33}, t, Device::cuda(0)).cpu(), gc.randn({1000, 33}, t));
        check_equal(gg.rand({4097}, t, Device::cuda(0)).cpu(), gc.rand({4097}, t));
    }
}

TEST_CASE("cuda runtime: events time work on the current stream; streams can be swapped", "[cuda]") {
    HPT_NEED_GPU();
    const Device gpu = Device::cuda(0);
    cuda::Event start, stop;
    start.record();
    Tensor x = full({1 << 20}, 1.0, DType::f32, gpu);
    Tensor y = x * 3.0;
    stop.record();
    stop.synchronize();
    CHECK(stop.elapsed_ms_since(start) >= 0.f);
    cudaStream_t mine = nullptr;
    REQUIRE(cudaStreamCreateWithFlags(&mine, cudaStreamNonBlocking) == cudaSuccess);
    cuda::synchronize(0);  // y was written on hpt's stream; the new stream must not race it
    cuda::set_current_stream(0, mine);
    CHECK(cuda::current_stream(0) == mine);
    const float s = sum(y).item<float>();
    cuda::set_current_stream(0, nullptr);
    CHECK(cuda::current_stream(0) == cuda::hpt_stream(0));
    CHECK(s == 3.f * float(1 << 20));
    cudaStreamDestroy(mine);
}

#endif  // HPT_WITH_CUDA
