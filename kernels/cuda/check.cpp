// Messages of the CUDA check family (check.h).
#include "kernels/cuda/check.h"

#include <cstdlib>
#include <cstring>
#include <iostream>

namespace hpt::cuda {

namespace {

std::string device_text() {
    int d = -1;
    // Asking must not disturb the error state we are about to report.
    if (cudaGetDevice(&d) != cudaSuccess) return "cuda:?";
    return "cuda:" + std::to_string(d);
}

// "kernels/cuda/copy.cu" rather than the absolute path of the build machine.
const char* short_path(const char* file) {
    const char* p = std::strstr(file, "/kernels/");
    return p ? p + 1 : file;
}

std::string message(const char* call, const StatusInfo& info, const char* file, int line) {
    return std::string(call) + " failed: " + info.text + " [" + short_path(file) + ":" + std::to_string(line) +
           ", on " + device_text() + "]";
}

const char* cublas_name(cublasStatus_t s) {
    switch (s) {
        case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
        case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
        case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
        case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
        case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
        case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
        default: return "CUBLAS_STATUS_?";
    }
}

}  // namespace

StatusInfo status_info(cudaError_t s) {
    // Non-sticky errors stay in the runtime's last-error slot until read; read it here so that a
    // caught error does not resurface at an unrelated later check.
    cudaGetLastError();
    return {s == cudaSuccess, s == cudaErrorMemoryAllocation,
            std::string(cudaGetErrorName(s)) + " (" + cudaGetErrorString(s) + ")"};
}

StatusInfo status_info(cublasStatus_t s) {
    return {s == CUBLAS_STATUS_SUCCESS, s == CUBLAS_STATUS_ALLOC_FAILED, cublas_name(s)};
}

#ifdef HPT_WITH_CUDNN
StatusInfo status_info(cudnnStatus_t s) {
    // cuDNN 9 groups statuses by category; allocation failures are internal errors of this kind.
    const bool oom = s == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
                     s == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED;
    return {s == CUDNN_STATUS_SUCCESS, oom, std::string(cudnnGetErrorString(s)) + " (" + std::to_string(int(s)) + ")"};
}
#endif

#ifdef HPT_WITH_NCCL
StatusInfo status_info(ncclResult_t s) {
    return {s == ncclSuccess, false, std::string("ncclResult ") + std::to_string(int(s)) + " (" + ncclGetErrorString(s) + ")"};
}
#endif

void check_failed(const char* call, const StatusInfo& info, const char* file, int line) {
    const std::string m = message(call, info, file, line);
    if (info.out_of_memory) throw OutOfMemory(m);
    throw Error(m);
}

void check_log(const char* call, const StatusInfo& info, const char* file, int line) {
    std::cerr << "hpt: warning: " << message(call, info, file, line) << std::endl;
}

void launch_check(const char* kernel, const char* file, int line) {
    const cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) return;
    const std::string what = std::string("launch of kernel '") + kernel + "'";
    check_failed(what.c_str(), status_info(e), file, line);
}

bool sync_after_every_op() {
    static const bool on = [] {
        const char* v = std::getenv("HPT_CUDA_SYNC");
        return v && std::strcmp(v, "0") != 0 && *v;
    }();
    return on;
}

}  // namespace hpt::cuda
