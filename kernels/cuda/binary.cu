// CUDA kernels of the broadcasting binary ops: add, sub, mul, div, pow and the comparisons.
// Mirrors kernels/cpu/binary.cpp: the operation runs in compute_type<T> (float for bf16) and the
// comparisons write u8. Either input may be a 0-dim CPU tensor (a number passed by value).
#include "engine/ops/registry.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernel_entry.h"
#include <cstdint>

namespace hpt::cuda {
namespace {

struct AddF { template <class C> __device__ C operator()(C a, C b) const { return a + b; } };
struct SubF { template <class C> __device__ C operator()(C a, C b) const { return a - b; } };
struct MulF { template <class C> __device__ C operator()(C a, C b) const { return a * b; } };
struct DivF { template <class C> __device__ C operator()(C a, C b) const { return a / b; } };
struct PowF { template <class C> __device__ C operator()(C a, C b) const { return d_pow(a, b); } };
struct EqF { template <class C> __device__ uint8_t operator()(C a, C b) const { return a == b; } };
struct GtF { template <class C> __device__ uint8_t operator()(C a, C b) const { return a > b; } };
struct LtF { template <class C> __device__ uint8_t operator()(C a, C b) const { return a < b; } };

template <class T, class Out, class F>
__global__ void binary_kernel(int64_t n, Indexer<3> ix, Out* out, Arg<T> a, Arg<T> b, F f) {
    using C = typename compute_type<T>::type;
    HPT_GRID_STRIDE(i, n) {
        int64_t off[3];
        ix.offsets(i, off);
        out[off[0]] = Out(f(C(a.at(off[1])), C(b.at(off[2]))));
    }
}

template <class T, class Out, class F>
void binary_typed(const KernelArgs& args, F f) {
    const Tensor &a = args.in[0], &b = args.in[1];
    Tensor& out = args.out[0];
    const Indexer<3> ix = make_indexer<3>({&out, &a, &b});
    launch_linear(op_name(args.op), binary_kernel<T, Out, F>, out.numel(), ix, static_cast<Out*>(out.data_ptr()),
                  arg_of<T>(a), arg_of<T>(b), f);
}

template <class F>
void arith_kernel(const KernelArgs& args) {
    HPT_DISPATCH_ALL(args.out[0].dtype(), op_name(args.op), [&] { binary_typed<scalar_t, scalar_t>(args, F{}); });
}

template <class F>
void float_kernel(const KernelArgs& args) {
    HPT_DISPATCH_FLOAT_BF16(args.out[0].dtype(), op_name(args.op),
                            [&] { binary_typed<scalar_t, scalar_t>(args, F{}); });
}

template <class F>
void compare_kernel(const KernelArgs& args) {
    HPT_DISPATCH_ALL(args.in[0].dtype(), op_name(args.op), [&] { binary_typed<scalar_t, uint8_t>(args, F{}); });
}

HPT_REGISTER_CUDA_KERNEL(add, arith_kernel<AddF>);
HPT_REGISTER_CUDA_KERNEL(sub, arith_kernel<SubF>);
HPT_REGISTER_CUDA_KERNEL(mul, arith_kernel<MulF>);
HPT_REGISTER_CUDA_KERNEL(div, arith_kernel<DivF>);
HPT_REGISTER_CUDA_KERNEL(pow, float_kernel<PowF>);
HPT_REGISTER_CUDA_KERNEL(eq, compare_kernel<EqF>);
HPT_REGISTER_CUDA_KERNEL(gt, compare_kernel<GtF>);
HPT_REGISTER_CUDA_KERNEL(lt, compare_kernel<LtF>);

}  // namespace
}  // namespace hpt::cuda
