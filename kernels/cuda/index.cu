// CUDA kernels of cat, index_select/index_add and gather/scatter_add. Mirrors
// kernels/cpu/index.cpp: contiguous tensors viewed as [outer, n, inner] around the indexed dim.
//
// Bad indices cannot throw on the GPU: the kernel records the first one in the device error word
// (runtime.h), skips it (index_select and gather write 0 there) and the next synchronisation
// point throws naming the op and the value.
//
// index_add and scatter_add are deterministic without atomics: each thread owns one "column" (all
// coordinates except the indexed dim), so no two threads write the same element, and walks the
// indices in order, adding in the CPU's order and accumulation type (float for bf16, through a
// float buffer). This is fast when the columns are many (e.g. the batch-permutation backward, whose
// columns are C*H*W); a 1-D index_add runs on one thread.
#include "engine/ops/attrs.h"
#include "engine/ops/registry.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/copy.h"
#include "kernels/cuda/kernel_entry.h"
#include "kernels/layout.h"
#include <cstdint>

namespace hpt::cuda {
namespace {

// ---------------------------------------------------------------- cat

void cat_cuda(const KernelArgs& args) {
    const int64_t dim = args.attr<DimAttrs>().dim;
    int64_t at = 0;
    for (int i = 0; i < args.n_in; ++i) {
        const int64_t n = args.in[i].size(dim);
        copy_on_device(args.out[0].detach().slice(dim, at, at + n), args.in[i]);
        at += n;
    }
}
HPT_REGISTER_CUDA_KERNEL(cat, cat_cuda);

// ---------------------------------------------------------------- index_select / index_add

// W: an unsigned word of the element's size; the copy does not need the dtype.
template <class W>
__global__ void index_select_kernel(int64_t total, const W* x, const int64_t* idx, W* out, Around ax, int64_t k,
                                    DeviceErrorWord* err) {
    HPT_GRID_STRIDE(e, total) {
        const int64_t i = e % ax.inner, j = (e / ax.inner) % k, o = e / (ax.inner * k);
        const int64_t v = idx[j];
        if (v < 0 || v >= ax.n) {
            if (o == 0 && i == 0) report_bad_value(err, int(OpId::index_select), v, j, ax.n);
            out[e] = W(0);
            continue;
        }
        out[e] = x[(o * ax.n + v) * ax.inner + i];
    }
}

void index_select_cuda(const KernelArgs& args) {
    const Tensor &x = args.in[0], &index = args.in[1];
    const Tensor& out = args.out[0];
    const Around ax = around(x, args.attr<DimAttrs>().dim);
    const int64_t k = index.numel();
    auto run = [&](auto word) {
        using W = decltype(word);
        launch_linear("index_select", index_select_kernel<W>, out.numel(), static_cast<const W*>(x.data_ptr()),
                      index.data<int64_t>(), static_cast<W*>(out.data_ptr()), ax, k, device_error_word());
    };
    switch (x.element_size()) {
        case 1: run(uint8_t()); break;
        case 2: run(uint16_t()); break;
        case 4: run(uint32_t()); break;
        case 8: run(uint64_t()); break;
        default: HPT_THROW("index_select: unsupported element size ", x.element_size());
    }
}
HPT_REGISTER_CUDA_KERNEL(index_select, index_select_cuda);

// acc (zeroed) [outer, n, inner] += src [outer, k, inner] at rows index[j]; a thread per (o, i).
template <class T, class C>
__global__ void index_add_kernel(int64_t columns, const int64_t* idx, const T* src, C* acc, Around ao, int64_t k,
                                 DeviceErrorWord* err) {
    HPT_GRID_STRIDE(col, columns) {
        const int64_t o = col / ao.inner, i = col - o * ao.inner;
        for (int64_t j = 0; j < k; ++j) {
            const int64_t v = idx[j];
            if (v < 0 || v >= ao.n) {
                if (col == 0) report_bad_value(err, int(OpId::index_add), v, j, ao.n);
                continue;
            }
            acc[(o * ao.n + v) * ao.inner + i] += C(src[(o * k + j) * ao.inner + i]);
        }
    }
}

// The accumulator of a scatter-type op: the output itself when T is its own accumulation type,
// else a zeroed float buffer that is converted into the output at the end.
template <class T>
struct Accumulator {
    using C = typename compute_type<T>::type;
    Tensor out, buffer;
    explicit Accumulator(const Tensor& o) : out(o) {
        if (!std::is_same<T, C>::value) buffer = empty(o.shape(), dtype_of<C>::value, o.device());
        zero_on_device(buffer.defined() ? buffer : out);
    }
    C* data() const { return static_cast<C*>((buffer.defined() ? buffer : out).data_ptr()); }
    void finish() const {
        if (buffer.defined()) copy_on_device(out, buffer);
    }
};

void index_add_cuda(const KernelArgs& args) {
    const Tensor &index = args.in[0], &src = args.in[1];
    const Tensor& out = args.out[0];
    const Around ao = around(out, args.attr<DimAttrs>().dim);
    HPT_DISPATCH_FLOAT_BF16(out.dtype(), "index_add", [&] {
        using T = scalar_t;
        const Accumulator<T> acc(out);
        launch_linear("index_add", index_add_kernel<T, typename Accumulator<T>::C>, ao.outer * ao.inner,
                      index.data<int64_t>(), src.data<T>(), acc.data(), ao, index.numel(), device_error_word());
        acc.finish();
    });
}
HPT_REGISTER_CUDA_KERNEL(index_add, index_add_cuda);

// ---------------------------------------------------------------- gather / scatter_add

// Index and x (or out) coordinates: index is contiguous with shape `size`; x strides `xs`.
struct GatherGeom {
    int nd = 0, dim = 0;
    int64_t size[kMaxDims] = {};
    int64_t xs[kMaxDims] = {};
    int64_t dim_n = 1;  // x.size(dim): indices must lie in [0, dim_n)
};

GatherGeom gather_geom(const Tensor& index, const Tensor& x, int64_t dim, const char* op) {
    HPT_CHECK(index.dim() <= kMaxDims, "op '", op, "' on CUDA supports rank <= ", kMaxDims, ", got index ",
              shape_str(index.shape()));
    GatherGeom g;
    g.nd = int(index.dim());
    g.dim = int(dim);
    const Shape xs = contiguous_strides(x.shape());
    for (int d = 0; d < g.nd; ++d) g.size[d] = index.size(d), g.xs[d] = xs[size_t(d)];
    g.dim_n = x.size(dim);
    return g;
}

template <class T>
__global__ void gather_kernel(int64_t n, GatherGeom g, const T* x, const int64_t* idx, T* out, DeviceErrorWord* err) {
    HPT_GRID_STRIDE(w, n) {
        const int64_t v = idx[w];
        if (v < 0 || v >= g.dim_n) {
            report_bad_value(err, int(OpId::gather), v, w, g.dim_n);
            out[w] = T();
            continue;
        }
        int64_t rem = w, off = 0;
        for (int d = g.nd - 1; d >= 0; --d) {
            const int64_t c = rem % g.size[d];
            rem /= g.size[d];
            off += (d == g.dim ? v : c) * g.xs[d];
        }
        out[w] = x[off];
    }
}

void gather_cuda(const KernelArgs& args) {
    const Tensor &x = args.in[0], &index = args.in[1];
    const Tensor& out = args.out[0];
    const GatherGeom g = gather_geom(index, x, args.attr<DimAttrs>().dim, "gather");
    HPT_DISPATCH_ALL(x.dtype(), "gather", [&] {
        using T = scalar_t;
        launch_linear("gather", gather_kernel<T>, index.numel(), g, x.data<T>(), index.data<int64_t>(),
                      out.data<T>(), device_error_word());
    });
}
HPT_REGISTER_CUDA_KERNEL(gather, gather_cuda);

// A thread per column of the index (every coordinate but `dim`), walking the column in order.
template <class T, class C>
__global__ void scatter_add_kernel(int64_t columns, GatherGeom g, const int64_t* idx, const T* src, C* acc,
                                   DeviceErrorWord* err) {
    HPT_GRID_STRIDE(col, columns) {
        int64_t rem = col, ibase = 0, obase = 0, istride = 1, idim_stride = 1;
        for (int d = g.nd - 1; d >= 0; --d) {
            if (d == g.dim) {
                idim_stride = istride;
            } else {
                const int64_t c = rem % g.size[d];
                rem /= g.size[d];
                ibase += c * istride;
                obase += c * g.xs[d];
            }
            istride *= g.size[d];
        }
        for (int64_t j = 0; j < g.size[g.dim]; ++j) {
            const int64_t w = ibase + j * idim_stride;
            const int64_t v = idx[w];
            if (v < 0 || v >= g.dim_n) {
                report_bad_value(err, int(OpId::scatter_add), v, w, g.dim_n);
                continue;
            }
            acc[obase + v * g.xs[g.dim]] += C(src[w]);
        }
    }
}

void scatter_add_cuda(const KernelArgs& args) {
    const Tensor &index = args.in[0], &src = args.in[1];
    const Tensor& out = args.out[0];
    const int64_t dim = args.attr<DimAttrs>().dim;
    const GatherGeom g = gather_geom(index, out, dim, "scatter_add");
    const int64_t along = index.size(dim);
    const int64_t columns = along == 0 ? 0 : index.numel() / along;
    HPT_DISPATCH_FLOAT_BF16(out.dtype(), "scatter_add", [&] {
        using T = scalar_t;
        const Accumulator<T> acc(out);
        launch_linear("scatter_add", scatter_add_kernel<T, typename Accumulator<T>::C>, columns, g,
                      index.data<int64_t>(), src.data<T>(), acc.data(), device_error_word());
        acc.finish();
    });
}
HPT_REGISTER_CUDA_KERNEL(scatter_add, scatter_add_cuda);

}  // namespace
}  // namespace hpt::cuda
