// CUDA kernels of the unary ops (neg, exp, log, sqrt, relu, clamp), their fused backward kernels
// (relu_backward, clamp_backward) and where. Mirrors kernels/cpu/unary.cpp, including the masks
// evaluated in double and NaN propagating through clamp.
#include "engine/ops/attrs.h"
#include "engine/ops/registry.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernel_entry.h"
#include <cstdint>

namespace hpt::cuda {
namespace {

struct NegF { template <class C> __device__ C operator()(C x) const { return C(-x); } };
struct ExpF { template <class C> __device__ C operator()(C x) const { return d_exp(x); } };
struct LogF { template <class C> __device__ C operator()(C x) const { return d_log(x); } };
struct SqrtF { template <class C> __device__ C operator()(C x) const { return d_sqrt(x); } };
struct ReluF {  // NaN propagates and -0 stays -0, as on the CPU
    template <class C> __device__ C operator()(C x) const { return x < C(0) ? C(0) : x; }
};
struct ClampF {
    double lo, hi;
    template <class C>
    __device__ C operator()(C x) const {
        const C l = C(lo), h = C(hi);
        return x < l ? l : (x > h ? h : x);  // NaN fails both tests and passes through
    }
};

template <class T, class F>
__global__ void unary_kernel(int64_t n, Indexer<2> ix, T* out, Arg<T> a, F f) {
    using C = typename compute_type<T>::type;
    HPT_GRID_STRIDE(i, n) {
        int64_t off[2];
        ix.offsets(i, off);
        out[off[0]] = T(f(C(a.at(off[1]))));
    }
}

template <class T, class F>
void unary_typed(const KernelArgs& args, F f) {
    Tensor& out = args.out[0];
    const Indexer<2> ix = make_indexer<2>({&out, &args.in[0]});
    launch_linear(op_name(args.op), unary_kernel<T, F>, out.numel(), ix, out.data<T>(), arg_of<T>(args.in[0]), f);
}

template <class F>
void float_unary(const KernelArgs& args) {
    HPT_DISPATCH_FLOAT_BF16(args.out[0].dtype(), op_name(args.op), [&] { unary_typed<scalar_t>(args, F{}); });
}

void neg_kernel(const KernelArgs& args) {
    HPT_DISPATCH_ALL(args.out[0].dtype(), "neg", [&] { unary_typed<scalar_t>(args, NegF{}); });
}

void clamp_kernel(const KernelArgs& args) {
    const ClampAttrs& a = args.attr<ClampAttrs>();
    HPT_DISPATCH_FLOAT_BF16(args.out[0].dtype(), "clamp", [&] { unary_typed<scalar_t>(args, ClampF{a.lo, a.hi}); });
}

HPT_REGISTER_CUDA_KERNEL(neg, neg_kernel);
HPT_REGISTER_CUDA_KERNEL(exp, float_unary<ExpF>);
HPT_REGISTER_CUDA_KERNEL(log, float_unary<LogF>);
HPT_REGISTER_CUDA_KERNEL(sqrt, float_unary<SqrtF>);
HPT_REGISTER_CUDA_KERNEL(relu, float_unary<ReluF>);
HPT_REGISTER_CUDA_KERNEL(clamp, clamp_kernel);

// ---------------------------------------------------------------- out = grad * mask(x)

struct ReluMask {  // x is relu's output
    __device__ bool operator()(double y) const { return y > 0; }
};
struct ClampMask {  // x is clamp's input
    double lo, hi;
    __device__ bool operator()(double x) const { return x >= lo && x <= hi; }
};

template <class T, class Mask>
__global__ void masked_grad_kernel(int64_t n, Indexer<3> ix, T* out, Arg<T> g, Arg<T> x, Mask mask) {
    using C = typename compute_type<T>::type;
    HPT_GRID_STRIDE(i, n) {
        int64_t off[3];
        ix.offsets(i, off);
        const C gv = C(g.at(off[1]));
        out[off[0]] = T(mask(double(C(x.at(off[2])))) ? gv : C(0));
    }
}

template <class Mask>
void masked_grad(const KernelArgs& args, Mask mask) {
    HPT_DISPATCH_FLOAT_BF16(args.out[0].dtype(), op_name(args.op), [&] {
        using T = scalar_t;
        Tensor& out = args.out[0];
        const Indexer<3> ix = make_indexer<3>({&out, &args.in[0], &args.in[1]});
        launch_linear(op_name(args.op), masked_grad_kernel<T, Mask>, out.numel(), ix, out.data<T>(),
                      arg_of<T>(args.in[0]), arg_of<T>(args.in[1]), mask);
    });
}

void relu_backward_kernel(const KernelArgs& args) { masked_grad(args, ReluMask{}); }
void clamp_backward_kernel(const KernelArgs& args) {
    const ClampAttrs& a = args.attr<ClampAttrs>();
    masked_grad(args, ClampMask{a.lo, a.hi});
}
HPT_REGISTER_CUDA_KERNEL(relu_backward, relu_backward_kernel);
HPT_REGISTER_CUDA_KERNEL(clamp_backward, clamp_backward_kernel);

// ---------------------------------------------------------------- where

template <class T>
__global__ void where_kernel(int64_t n, Indexer<4> ix, T* out, Arg<uint8_t> cond, Arg<T> a, Arg<T> b) {
    HPT_GRID_STRIDE(i, n) {
        int64_t off[4];
        ix.offsets(i, off);
        out[off[0]] = cond.at(off[1]) != 0 ? a.at(off[2]) : b.at(off[3]);
    }
}

void where_cuda(const KernelArgs& args) {
    HPT_DISPATCH_ALL(args.out[0].dtype(), "where", [&] {
        using T = scalar_t;
        Tensor& out = args.out[0];
        const Indexer<4> ix = make_indexer<4>({&out, &args.in[0], &args.in[1], &args.in[2]});
        launch_linear("where", where_kernel<T>, out.numel(), ix, out.data<T>(), arg_of<uint8_t>(args.in[0]),
                      arg_of<T>(args.in[1]), arg_of<T>(args.in[2]));
    });
}
HPT_REGISTER_CUDA_KERNEL(where, where_cuda);

}  // namespace
}  // namespace hpt::cuda
