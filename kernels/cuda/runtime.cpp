// Devices, streams, synchronisation, events, the deferred error word and the global switches.
#include "kernels/cuda/runtime.h"

#include <cstdint>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "engine/ops/registry.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/kernel_entry.h"

namespace hpt {

namespace {
// Unset or empty: nullopt; "0": off; anything else: on.
std::optional<bool> env_switch(const char* name) {
    const char* v = std::getenv(name);
    if (!v || !*v) return std::nullopt;
    return std::strcmp(v, "0") != 0;
}
std::atomic<bool> g_tf32{env_switch("HPT_CUDA_TF32").value_or(false)};
std::atomic<bool> g_deterministic{env_switch("HPT_DETERMINISTIC").value_or(false)};
std::atomic<bool> g_exact_conv{env_switch("HPT_CUDNN_EXACT").value_or(false)};
std::atomic<bool> g_info_nce_pipelined{env_switch("HPT_INFONCE_PIPELINE").value_or(true)};
std::atomic<ConvGemm> g_conv_gemm{[] {
    const std::optional<bool> on = env_switch("HPT_CONV_GEMM");
    return !on ? ConvGemm::timed : *on ? ConvGemm::always : ConvGemm::never;
}()};
}  // namespace

void set_cuda_tf32(bool on) { g_tf32 = on; }
bool cuda_tf32() { return g_tf32.load(); }
void set_cuda_deterministic(bool on) { g_deterministic = on; }
bool cuda_deterministic() { return g_deterministic.load(); }
void set_cuda_exact_conv(bool on) { g_exact_conv = on; }
bool cuda_exact_conv() { return g_exact_conv.load(); }
void set_cuda_info_nce_pipelined(bool on) { g_info_nce_pipelined = on; }
bool cuda_info_nce_pipelined() { return g_info_nce_pipelined.load(); }
void set_cuda_conv_gemm(ConvGemm mode) { g_conv_gemm = mode; }
ConvGemm cuda_conv_gemm() { return g_conv_gemm.load(); }

}  // namespace hpt

namespace hpt::cuda {

namespace {

// What hpt keeps per device. Created on first use of the device, never destroyed: streams and
// pinned buffers must outlive every tensor, some of which die during static destruction.
struct DeviceState {
    cudaStream_t own = nullptr;
    std::atomic<cudaStream_t> current{nullptr};
    DeviceErrorWord* word = nullptr;       // device memory, written by kernels
    DeviceErrorWord* host_word = nullptr;  // pinned mirror, filled at synchronisation points
};

struct DeviceTable {
    std::vector<std::once_flag> once;
    std::vector<std::unique_ptr<DeviceState>> states;
    explicit DeviceTable(int n) : once(size_t(n)), states(size_t(n)) {}
};

DeviceTable& table() {
    static DeviceTable* t = new DeviceTable(cuda_device_count());
    return *t;
}

DeviceState& state(int device) {
    check_device_index(device);
    DeviceTable& t = table();
    std::call_once(t.once[size_t(device)], [&] {
        DeviceGuard g(device);
        auto s = std::make_unique<DeviceState>();
        // Non-blocking: hpt's work must not serialise with the legacy default stream of other code.
        HPT_CUDA_CHECK(cudaStreamCreateWithFlags(&s->own, cudaStreamNonBlocking));
        s->current = s->own;
        HPT_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&s->word), sizeof(DeviceErrorWord)));
        HPT_CUDA_CHECK(cudaMemset(s->word, 0, sizeof(DeviceErrorWord)));
        HPT_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&s->host_word), sizeof(DeviceErrorWord), cudaHostAllocDefault));
        std::memset(s->host_word, 0, sizeof(DeviceErrorWord));
        HPT_CUDA_CHECK(cudaDeviceSynchronize());  // the memset above ran on the legacy stream
        t.states[size_t(device)] = std::move(s);
    });
    return *t.states[size_t(device)];
}

int resolve(int device) { return device < 0 ? current_device() : device; }

// After a synchronisation: turn a recorded device error into an exception (and clear it).
void raise_deferred(int device, DeviceState& s, cudaStream_t stream) {
    const DeviceErrorWord w = *s.host_word;
    if (w.flag == 0) return;
    std::memset(s.host_word, 0, sizeof(DeviceErrorWord));
    HPT_CUDA_CHECK(cudaMemsetAsync(s.word, 0, sizeof(DeviceErrorWord), stream));
    const char* op = (w.op >= 0 && w.op < kNumOps) ? op_name(OpId(w.op)) : "?";
    const bool target = OpId(w.op) == OpId::cross_entropy || OpId(w.op) == OpId::cross_entropy_backward;
    HPT_THROW("op '", op, "' on cuda:", device, ": ", target ? "target " : "index ", w.value, " at position ",
              w.position, " is out of range [0, ", w.bound, "); the kernel skipped it",
              " (found on the GPU, reported at the next synchronisation)");
}

}  // namespace

void check_device_index(int index) {
    static const int n = cuda_device_count();  // fixed for the process; asked once, not per op
    HPT_CHECK(index >= 0 && index < n, "cuda:", index, " requested but only ", n, " CUDA device(s) visible",
              n == 0 ? " (no GPU, or no usable driver)" : "");
}

int current_device() {
    int d = 0;
    HPT_CUDA_CHECK(cudaGetDevice(&d));
    return d;
}

DeviceGuard::DeviceGuard(int device) {
    check_device_index(device);
    HPT_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) HPT_CUDA_CHECK(cudaSetDevice(device));
}

DeviceGuard::~DeviceGuard() {
    int now = -1;
    if (cudaGetDevice(&now) == cudaSuccess && now != previous_ && previous_ >= 0) {
        HPT_CUDA_CHECK_LOG(cudaSetDevice(previous_));
    }
}

cudaStream_t current_stream(int device) { return state(resolve(device)).current.load(); }

cudaStream_t hpt_stream(int device) { return state(resolve(device)).own; }

void set_current_stream(int device, cudaStream_t s) {
    DeviceState& st = state(resolve(device));
    st.current = s ? s : st.own;
}

void sync_stream(cudaStream_t stream) {
    const int device = current_device();
    DeviceState& s = state(device);
    // The word is copied in stream order, so it holds what every earlier kernel recorded.
    HPT_CUDA_CHECK(cudaMemcpyAsync(s.host_word, s.word, sizeof(DeviceErrorWord), cudaMemcpyDeviceToHost, stream));
    HPT_CUDA_CHECK(cudaStreamSynchronize(stream));
    raise_deferred(device, s, stream);
}

void synchronize(int device) {
    const int d = resolve(device);
    DeviceGuard g(d);
    sync_stream(current_stream(d));
}

DeviceErrorWord* device_error_word() { return state(current_device()).word; }

// ---------------------------------------------------------------- events

Event::Event(bool timing) {
    device_ = current_device();
    HPT_CUDA_CHECK(cudaEventCreateWithFlags(&event_, timing ? cudaEventDefault : cudaEventDisableTiming));
}

Event::~Event() {
    if (event_) HPT_CUDA_CHECK_LOG(cudaEventDestroy(event_));
}

void Event::record(cudaStream_t s) {
    DeviceGuard g(device_);
    HPT_CUDA_CHECK(cudaEventRecord(event_, s ? s : current_stream(device_)));
}

void Event::synchronize() const { HPT_CUDA_CHECK(cudaEventSynchronize(event_)); }

float Event::elapsed_ms_since(const Event& start) const {
    float ms = 0.f;
    HPT_CUDA_CHECK(cudaEventElapsedTime(&ms, start.event_, event_));
    return ms;
}

// ---------------------------------------------------------------- settings

size_t cudnn_workspace_limit() {
    static const size_t bytes = [] {
        const char* v = std::getenv("HPT_CUDNN_WORKSPACE_MB");
        long long mb = 1024;
        if (v && *v) {
            char* end = nullptr;
            mb = std::strtoll(v, &end, 10);
            HPT_CHECK(end && *end == '\0' && mb >= 0, "HPT_CUDNN_WORKSPACE_MB='", v,
                      "' is not a non-negative number of MiB");
        }
        return size_t(mb) << 20;
    }();
    return bytes;
}

namespace {
std::atomic<int64_t> g_cudnn_fallbacks{0};
}
int64_t cudnn_fallback_count() { return g_cudnn_fallbacks.load(); }
void note_cudnn_fallback() { ++g_cudnn_fallbacks; }

}  // namespace hpt::cuda

// ---------------------------------------------------------------- kernel entry (kernel_entry.h)

namespace hpt::cuda {

int device_of(const KernelArgs& a) {
    for (int i = 0; i < a.n_in; ++i)
        if (a.in[i].defined() && a.in[i].device().is_cuda()) return a.in[i].device().index;
    for (int i = 0; i < a.n_out; ++i)
        if (a.out[i].defined() && a.out[i].device().is_cuda()) return a.out[i].device().index;
    HPT_THROW("op '", op_name(a.op), "': the CUDA kernel was given no CUDA tensor");
}

void finish_op_synchronously(const KernelArgs& a) {
    try {
        sync_stream(current_stream());
    } catch (const OutOfMemory&) {
        throw;
    } catch (const Error& e) {
        throw Error(str("op '", op_name(a.op), "' failed on cuda:", current_device(),
                        " (found by HPT_CUDA_SYNC=1 right after the op): ", e.what()));
    }
}

}  // namespace hpt::cuda
