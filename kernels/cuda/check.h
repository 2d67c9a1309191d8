// One check family for every status type the CUDA backend meets: cudaError_t, cublasStatus_t,
// cudnnStatus_t and ncclResult_t.
//
//   HPT_CUDA_CHECK(call)       throws hpt::Error (hpt::OutOfMemory for allocation failures) naming
//                              the call's text, the status name and string, file:line and the device
//   HPT_CUDA_CHECK_LOG(call)   the same message on stderr, no throw: for destructors and release paths
//   HPT_CUDA_LAUNCH_CHECK(k)   cudaGetLastError() after a kernel launch, naming the kernel
//
// Kernels run asynchronously, so a fault inside one surfaces at some later call. With the
// environment variable HPT_CUDA_SYNC=1 every op synchronises when it ends (kernel_entry.h), which
// pins the fault to the op that caused it.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <string>

#include "engine/core/error.h"

#ifdef HPT_WITH_CUDNN
#include <cudnn.h>
#endif
#ifdef HPT_WITH_NCCL
#include <nccl.h>
#endif

namespace hpt::cuda {

// What the check family needs to know about a status type: success, a printable name, and whether
// the failure is an allocation failure (reported as hpt::OutOfMemory).
struct StatusInfo {
    bool ok;
    bool out_of_memory;
    std::string text;  // "cudaErrorIllegalAddress (an illegal memory access was encountered)"
};

inline bool is_success(cudaError_t s) { return s == cudaSuccess; }
inline bool is_success(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS; }
#ifdef HPT_WITH_CUDNN
inline bool is_success(cudnnStatus_t s) { return s == CUDNN_STATUS_SUCCESS; }
#endif
#ifdef HPT_WITH_NCCL
inline bool is_success(ncclResult_t s) { return s == ncclSuccess; }
#endif

StatusInfo status_info(cudaError_t s);
StatusInfo status_info(cublasStatus_t s);
#ifdef HPT_WITH_CUDNN
StatusInfo status_info(cudnnStatus_t s);
#endif
#ifdef HPT_WITH_NCCL
StatusInfo status_info(ncclResult_t s);
#endif

// Only called on failure. For CUDA errors they also clear the runtime's last-error slot, so that
// a caught error does not resurface at an unrelated later call.
[[noreturn]] void check_failed(const char* call, const StatusInfo& info, const char* file, int line);
void check_log(const char* call, const StatusInfo& info, const char* file, int line);

template <class S>
inline void check(S status, const char* call, const char* file, int line) {
    if (is_success(status)) return;
    check_failed(call, status_info(status), file, line);
}

template <class S>
inline void check_log_only(S status, const char* call, const char* file, int line) {
    if (is_success(status)) return;
    check_log(call, status_info(status), file, line);
}

// cudaGetLastError() after a launch; throws naming the kernel when the launch failed.
void launch_check(const char* kernel, const char* file, int line);

// HPT_CUDA_SYNC=1 (read once): synchronise after every op.
bool sync_after_every_op();

}  // namespace hpt::cuda

#define HPT_CUDA_CHECK(call) ::hpt::cuda::check((call), #call, __FILE__, __LINE__)
#define HPT_CUDA_CHECK_LOG(call) ::hpt::cuda::check_log_only((call), #call, __FILE__, __LINE__)
#define HPT_CUDA_LAUNCH_CHECK(kernel) ::hpt::cuda::launch_check(kernel, __FILE__, __LINE__)
