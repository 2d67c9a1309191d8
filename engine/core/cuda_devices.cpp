#include "engine/core/device.h"

#ifdef HPT_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

#include "engine/core/error.h"

namespace hpt {

int cuda_device_count() {
#ifdef HPT_WITH_CUDA
    int n = 0;
    // No driver or no GPU is not an error here: it means zero devices.
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
#else
    return 0;
#endif
}

void set_current_cuda_device(int index) {
#ifdef HPT_WITH_CUDA
    const cudaError_t e = cudaSetDevice(index);
    if (e != cudaSuccess) {
        cudaGetLastError();
        HPT_THROW("cannot make cuda:", index, " the current device: ", cudaGetErrorString(e), " (",
                  cuda_device_count(), " CUDA device(s) visible)");
    }
#else
    HPT_THROW("cuda:", index, " requested, but this build has no CUDA");
#endif
}

}  // namespace hpt
