// CUDA kernels that write whole tensors: copy (device<->device, host<->device, converting dtype,
// any strides, broadcasting), fill and fill_random. Mirrors kernels/cpu/copy.cpp.
//
// Transfers. A contiguous same-dtype transfer is one cudaMemcpyAsync on the current stream, from
// pinned or pageable memory (a pageable source is staged by the driver before the call returns,
// so it may be freed at once). Anything else is staged: host->device converts layout and dtype on
// the host and ships one contiguous block; device->host converts on the device, ships one block
// and rearranges on the host. A device->host copy synchronises the stream before returning (the
// host reads the data next), which is also where deferred device errors are raised.
#include <cstdint>
#include <cmath>
#include <cstring>

#include "engine/core/philox.h"
#include "engine/ops/attrs.h"
#include "engine/ops/registry.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/copy.h"
#include "kernels/cuda/kernel_entry.h"

namespace hpt::cuda {

namespace {

template <class D, class S>
__global__ void convert_kernel(int64_t n, Indexer<2> ix, D* dst, Arg<S> src) {
    using CS = typename compute_type<S>::type;
    using CD = typename compute_type<D>::type;
    HPT_GRID_STRIDE(i, n) {
        int64_t off[2];
        ix.offsets(i, off);
        dst[off[0]] = D(CD(CS(src.at(off[1]))));
    }
}

bool plain_block(const Tensor& dst, const Tensor& src) {
    return dst.dtype() == src.dtype() && dst.shape() == src.shape() && dst.is_contiguous() && src.is_contiguous();
}

size_t nbytes_of(const Tensor& t) { return size_t(t.numel()) * t.element_size(); }

// dst = src, both on the CPU (the CPU copy kernel, without autograd).
void copy_on_host(const Tensor& dst, const Tensor& src) {
    const KernelFn cpu_copy = find_kernel(OpId::copy, DeviceType::cpu);
    HPT_CHECK(cpu_copy, "copy: no CPU copy kernel registered");
    Tensor d = dst;
    KernelArgs a{OpId::copy, &src, 1, &d, 1, nullptr};
    cpu_copy(a);
}

void host_to_device(const Tensor& dst, const Tensor& src) {
    cudaStream_t s = current_stream();
    if (plain_block(dst, src)) {
        HPT_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), nbytes_of(dst), cudaMemcpyHostToDevice, s));
        return;
    }
    const Tensor host = empty(dst.shape(), dst.dtype(), Device::cpu());
    copy_on_host(host, src);
    const Tensor block = dst.is_contiguous() ? dst : empty(dst.shape(), dst.dtype(), dst.device());
    HPT_CUDA_CHECK(cudaMemcpyAsync(block.data_ptr(), host.data_ptr(), nbytes_of(dst), cudaMemcpyHostToDevice, s));
    if (!block.is_same(dst)) copy_on_device(dst, block);
}

void device_to_host(const Tensor& dst, const Tensor& src) {
    cudaStream_t s = current_stream();
    Tensor block = src;
    if (!(src.dtype() == dst.dtype() && src.shape() == dst.shape() && src.is_contiguous())) {
        block = empty(dst.shape(), dst.dtype(), src.device());
        copy_on_device(block, src);
    }
    const Tensor host = dst.is_contiguous() ? dst : empty(dst.shape(), dst.dtype(), Device::cpu());
    HPT_CUDA_CHECK(cudaMemcpyAsync(host.data_ptr(), block.data_ptr(), nbytes_of(dst), cudaMemcpyDeviceToHost, s));
    sync_stream(s);
    if (!host.is_same(dst)) copy_on_host(dst, host);
}

// Between two devices: each side is made a contiguous block of dst's dtype on its own device, the
// block crosses with a peer copy, and both streams are drained so that neither block is reused
// while the other device still reads it. Rare (one GPU is the common case), so kept simple.
void device_to_device(const Tensor& dst, const Tensor& src) {
    const int ds = src.device().index, dd = dst.device().index;
    Tensor from = src;
    {
        DeviceGuard g(ds);
        if (!(src.dtype() == dst.dtype() && src.shape() == dst.shape() && src.is_contiguous())) {
            from = empty(dst.shape(), dst.dtype(), src.device());
            copy_on_device(from, src);
        }
        sync_stream(current_stream(ds));
    }
    DeviceGuard g(dd);
    const Tensor to = dst.is_contiguous() ? dst : empty(dst.shape(), dst.dtype(), dst.device());
    HPT_CUDA_CHECK(cudaMemcpyPeerAsync(to.data_ptr(), dd, from.data_ptr(), ds, nbytes_of(dst), current_stream(dd)));
    if (!to.is_same(dst)) copy_on_device(dst, to);
    sync_stream(current_stream(dd));
}

void copy_cuda(const KernelArgs& args) {
    const Tensor &src = args.in[0], &dst = args.out[0];
    if (dst.numel() == 0) return;
    const bool s_dev = src.device().is_cuda(), d_dev = dst.device().is_cuda();
    if (s_dev && d_dev) {
        if (src.device() == dst.device()) return copy_on_device(dst, src);
        return device_to_device(dst, src);
    }
    if (d_dev) return host_to_device(dst, src);
    return device_to_host(dst, src);
}
HPT_REGISTER_CUDA_KERNEL(copy, copy_cuda);

// ---------------------------------------------------------------- fill

template <class T>
__global__ void fill_kernel(int64_t n, Indexer<1> ix, T* out, T value) {
    HPT_GRID_STRIDE(i, n) {
        int64_t off[1];
        ix.offsets(i, off);
        out[off[0]] = value;
    }
}

void fill_cuda(const KernelArgs& args) {
    const double v = args.attr<FillAttrs>().value;
    const Tensor& out = args.out[0];
    if (v == 0.0 && !std::signbit(v)) return zero_on_device(out);
    HPT_DISPATCH_ALL(out.dtype(), "fill", [&] {
        using T = scalar_t;
        const T value = T(typename compute_type<T>::type(v));
        const Indexer<1> ix = make_indexer<1>({&out});
        launch_linear("fill", fill_kernel<T>, out.numel(), ix, out.data<T>(), value);
    });
}
HPT_REGISTER_CUDA_KERNEL(fill, fill_cuda);

// ---------------------------------------------------------------- fill_random

// The same element function as the CPU kernel (engine/core/philox.h), so the bits agree.
template <class T>
__global__ void fill_random_kernel(int64_t n, T* out, bool normal, double a, double b, uint64_t seed,
                                   uint64_t stream, uint64_t offset) {
    HPT_GRID_STRIDE(i, n) {
        const Philox4 r = philox_at(seed, stream, offset + uint64_t(i));
        out[i] = T(typename compute_type<T>::type(philox_fill_value(normal, a, b, r)));
    }
}

void fill_random_cuda(const KernelArgs& args) {
    const RandomAttrs& a = args.attr<RandomAttrs>();
    const Tensor& out = args.out[0];
    HPT_CHECK(out.is_contiguous(), "fill_random needs a contiguous output");
    HPT_DISPATCH_FLOAT_BF16(out.dtype(), "fill_random", [&] {
        launch_linear("fill_random", fill_random_kernel<scalar_t>, out.numel(), out.data<scalar_t>(),
                      a.dist == RandomAttrs::normal, a.a, a.b, a.seed, a.stream, a.offset);
    });
}
HPT_REGISTER_CUDA_KERNEL(fill_random, fill_random_cuda);

}  // namespace

// ---------------------------------------------------------------- shared with other kernels

void copy_on_device(const Tensor& dst, const Tensor& src) {
    if (dst.numel() == 0) return;
    if (src.device().is_cuda() && plain_block(dst, src)) {
        HPT_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), nbytes_of(dst), cudaMemcpyDeviceToDevice,
                                       current_stream()));
        return;
    }
    const Indexer<2> ix = make_indexer<2>({&dst, &src});
    HPT_DISPATCH_ALL(dst.dtype(), "copy", [&] {
        using D = scalar_t;
        HPT_DISPATCH_ALL(src.dtype(), "copy", [&] {
            launch_linear("copy", convert_kernel<D, scalar_t>, dst.numel(), ix, static_cast<D*>(dst.data_ptr()),
                          arg_of<scalar_t>(src));
        });
    });
}

void zero_on_device(const Tensor& t) {
    if (t.numel() == 0) return;
    if (t.is_contiguous()) {
        HPT_CUDA_CHECK(cudaMemsetAsync(t.data_ptr(), 0, nbytes_of(t), current_stream()));
        return;
    }
    HPT_DISPATCH_ALL(t.dtype(), "fill", [&] {
        using T = scalar_t;
        const Indexer<1> ix = make_indexer<1>({&t});
        launch_linear("fill", fill_kernel<T>, t.numel(), ix, t.data<T>(), T(typename compute_type<T>::type(0)));
    });
}

}  // namespace hpt::cuda
