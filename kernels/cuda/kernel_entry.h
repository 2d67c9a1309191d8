// How CUDA kernels enter the op table. HPT_REGISTER_CUDA_KERNEL(op, fn) registers a wrapper that
// makes the tensors' device current, opens an NVTX range named after the op (visible in Nsight
// Systems), runs fn, and with HPT_CUDA_SYNC=1 synchronises so that an asynchronous fault is
// reported by the op that caused it.
#pragma once
#include <nvtx3/nvToolsExt.h>

#include "engine/ops/registry.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/runtime.h"

namespace hpt::cuda {

// The index of the first CUDA tensor among the kernel's inputs and outputs (CPU tensors may appear
// as 0-dim numbers, and as one side of a host<->device copy).
int device_of(const KernelArgs& a);

// HPT_CUDA_SYNC=1: waits for the op and rethrows any failure with the op's name.
void finish_op_synchronously(const KernelArgs& a);

template <KernelFn F>
void entry(const KernelArgs& a) {
    DeviceGuard guard(device_of(a));
    nvtxRangePushA(op_name(a.op));
    struct PopRange {
        ~PopRange() { nvtxRangePop(); }
    } pop;
    F(a);
    if (sync_after_every_op()) finish_op_synchronously(a);
}

}  // namespace hpt::cuda

#define HPT_REGISTER_CUDA_KERNEL(op, fn) HPT_REGISTER_KERNEL(op, cuda, ::hpt::cuda::entry<fn>)
