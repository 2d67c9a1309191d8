#include "engine/core/device.h"

#ifdef HPT_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

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

}  // namespace hpt
