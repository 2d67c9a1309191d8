// The CUDA runtime layer of hpt: devices, streams, synchronisation, events, memory statistics,
// pinned host memory, the deferred device-error word and the global switches (TF32,
// determinism, cuDNN workspace). Plain C++: included by tests and benches as well as kernels.
//
// Streams. Each device has one non-blocking stream that hpt creates on first use; every hpt op on
// that device (kernels, copies, cuBLAS, cuDNN) is issued to the device's *current* stream, which
// is hpt's stream unless set_current_stream() installed another. Memory is freed to the stream it
// was allocated on (allocator.cpp), so reuse needs no synchronisation. A tensor used on another
// stream must be synchronised before it is freed.
//
// Deferred errors. A kernel that meets a bad value (an out-of-range index or class target) cannot
// throw. It records the first bad value in its device's error word, skips the element, and the next
// synchronisation point (synchronize(), a device->host copy, HPT_CUDA_SYNC=1) throws an hpt::Error
// naming the op and the value.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "engine/core/allocator.h"
#include "engine/core/tensor.h"

namespace hpt {

// TF32 tensor-core math for f32 GEMMs (cuBLAS), convolutions (cuDNN) and the fused InfoNCE (ours,
// kernels/cuda/info_nce_tc.cu). Default off (f32 results then match the CPU to f32 rounding); the
// environment variable HPT_CUDA_TF32=1 turns it on.
void set_cuda_tf32(bool on);
bool cuda_tf32();

// Only deterministic cuDNN algorithms (bitwise-equal repeated results). Default off; environment
// variable HPT_DETERMINISTIC=1. hpt's own kernels are deterministic in either mode.
void set_cuda_deterministic(bool on);
bool cuda_deterministic();

// Only direct and implicit-GEMM cuDNN convolutions: no FFT or Winograd algorithms, which compute in
// a transformed domain and differ from f32 loops by up to 1e-3 relative (seen on the H100). Default
// off, like PyTorch, because Winograd is 2-3.5x faster for 3x3 stride-1 convolutions there; the
// tests that hold the GPU to the CPU's f32 rounding turn it on. Environment: HPT_CUDNN_EXACT=1.
void set_cuda_exact_conv(bool on);
bool cuda_exact_conv();

// The TF32 InfoNCE streams queue tiles with cp.async, double-buffered, instead of loading each tile
// synchronously (kernels/cuda/info_nce_tc.cu); both give the same bits (tested on the H100). On by
// default: 0.173 ms against 0.562 ms for forward and backward at N=256, D=128, K=65536 on the H100
// (bench/results/h100/). Environment: HPT_INFONCE_PIPELINE=0 turns it off.
void set_cuda_info_nce_pipelined(bool on);
bool cuda_info_nce_pipelined();

// Pointwise convolutions (1x1, stride 1, no padding, one group) can run as batched cuBLAS GEMMs
// over the samples, forward and both gradients (kernels/cuda/conv2d_cudnn.cpp). timed: the
// algorithm search times the GEMM next to cuDNN's algorithms and keeps the fastest; always and
// never are for tests and comparisons. Environment: HPT_CONV_GEMM=1 (always), 0 (never); unset: timed.
enum class ConvGemm { timed, always, never };
void set_cuda_conv_gemm(ConvGemm mode);
ConvGemm cuda_conv_gemm();

}  // namespace hpt

namespace hpt::cuda {

// ---- devices

// Throws "cuda:3 requested but only 1 CUDA device(s) visible" for an index that does not exist.
void check_device_index(int index);
int current_device();

// Makes `device` current for its lifetime and restores the previous one.
class DeviceGuard {
public:
    explicit DeviceGuard(int device);
    ~DeviceGuard();
    DeviceGuard(const DeviceGuard&) = delete;
    DeviceGuard& operator=(const DeviceGuard&) = delete;

private:
    int previous_ = -1;
};

// ---- streams

// The stream hpt issues work to on `device` (-1: the current device).
cudaStream_t current_stream(int device = -1);
// Installs `s` as the current stream of `device`; nullptr restores hpt's own stream.
void set_current_stream(int device, cudaStream_t s);
// hpt's own non-blocking stream of `device`.
cudaStream_t hpt_stream(int device);

// Waits for the current stream of `device` (-1: current) and throws any deferred device error.
void synchronize(int device = -1);
// The same for an explicit stream of the current device (used by device->host copies).
void sync_stream(cudaStream_t s);

// ---- events

class Event {
public:
    explicit Event(bool timing = true);  // on the current device
    ~Event();
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;

    void record(cudaStream_t s = nullptr);  // nullptr: the current stream
    void synchronize() const;
    // Milliseconds from `start` to this event; both recorded with timing on, this one completed.
    float elapsed_ms_since(const Event& start) const;
    cudaEvent_t get() const { return event_; }

private:
    cudaEvent_t event_ = nullptr;
    int device_ = 0;
};

// ---- deferred device errors

// Written by kernels (kernels/cuda/common.cuh: report_bad_value); the first writer wins.
struct DeviceErrorWord {
    unsigned int flag;  // 0: clear
    int op;             // OpId
    long long value;    // the bad value
    long long position; // where (index position, row)
    long long bound;    // the valid range is [0, bound)
};

// The device-memory error word of the current device, cleared at creation.
DeviceErrorWord* device_error_word();

// ---- memory

struct CudaMemoryStats {
    AllocatorStats base;        // in_use (requested bytes), peak, cached (free bytes held), allocs, frees
    int64_t reserved = 0;       // bytes obtained from cudaMalloc and not yet returned
    int64_t device_mallocs = 0; // cudaMalloc calls
    int64_t device_frees = 0;   // cudaFree calls
    int64_t oom_retries = 0;    // allocations that succeeded only after emptying the cache
};
CudaMemoryStats memory_stats(int device = -1);
// Returns every cached block that is a whole cudaMalloc segment to the driver.
void empty_cache(int device = -1);

// A CPU tensor in page-locked (pinned) memory, for fast and truly asynchronous transfers.
// Whoever writes to or frees it must first let pending copies from it finish.
Tensor pinned_empty(const Shape& shape, DType dtype);
bool is_pinned(const void* host_ptr);

// cuDNN workspace cap in bytes: 1 GiB, or HPT_CUDNN_WORKSPACE_MB.
size_t cudnn_workspace_limit();
// How many times a cuDNN algorithm was passed over because its workspace could not be allocated
// (each one is also logged on stderr).
int64_t cudnn_fallback_count();
void note_cudnn_fallback();

}  // namespace hpt::cuda
