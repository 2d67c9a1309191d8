// CUDA kernels of sum, mean, max and argmax. Mirrors kernels/cpu/reduce.cpp: a contiguous input,
// the output in keepdim form, floating sums accumulated in double and integer sums in int64; max
// takes the first maximum and lets NaN win (the first NaN).
//
// sum/mean: the input's dims are merged into runs of kept and reduced dims (as on the CPU); output
// element k reduces R values at kept_off(k) + red_off(r). When the innermost run is reduced, a
// thread block reduces each output ("rows"); when it is kept, each thread owns one output and
// walks the reduced values in order ("columns"), coalesced across threads. Long reductions are cut
// into a number of splits that depends only on the shape; per-split partials are added in split
// order by a second kernel. No atomics: results are bitwise repeatable.
#include <cstdint>
#include <vector>

#include "engine/ops/attrs.h"
#include "engine/ops/registry.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kernel_entry.h"

namespace hpt::cuda {
namespace {

// Offsets of a mixed-radix index over up to kMaxDims (size, stride) runs, outermost first.
struct Decomp {
    int ndim = 0;
    int64_t size[kMaxDims] = {};
    int64_t stride[kMaxDims] = {};
    __device__ int64_t offset(int64_t i) const {
        if (ndim == 1) return i * stride[0];
        int64_t off = 0;
#pragma unroll
        for (int d = kMaxDims - 1; d >= 0; --d) {
            if (d >= ndim) continue;
            const int64_t q = i / size[d];
            off += (i - q * size[d]) * stride[d];
            i = q;
        }
        return off;
    }
};

struct Plan {
    Decomp kept, red;
    int64_t n_out = 1, R = 1;
    bool rows = true;  // the innermost run is reduced
};

Plan make_plan(const Tensor& x, const std::vector<int64_t>& dims) {
    struct Run {
        int64_t size, stride;
        bool reduced;
    };
    std::vector<bool> red(size_t(x.dim()), false);
    for (int64_t d : dims) red[size_t(d)] = true;
    std::vector<Run> runs;
    for (int64_t d = 0; d < x.dim(); ++d) {
        const int64_t n = x.size(d);
        if (n == 1) continue;
        if (!runs.empty() && runs.back().reduced == red[size_t(d)]) {
            runs.back().size *= n;
        } else {
            runs.push_back({n, 0, red[size_t(d)]});
        }
    }
    int64_t s = 1;
    for (auto it = runs.rbegin(); it != runs.rend(); ++it) it->stride = s, s *= it->size;
    Plan p;
    p.rows = runs.empty() || runs.back().reduced;
    for (const Run& r : runs) {
        Decomp& d = r.reduced ? p.red : p.kept;
        HPT_CHECK(d.ndim < kMaxDims, "sum: too many alternating kept/reduced dims in ", shape_str(x.shape()));
        d.size[d.ndim] = r.size;
        d.stride[d.ndim] = r.stride;
        ++d.ndim;
        (r.reduced ? p.R : p.n_out) *= r.size;
    }
    for (Decomp* d : {&p.kept, &p.red}) {
        if (d->ndim == 0) d->ndim = 1, d->size[0] = 1, d->stride[0] = 0;
    }
    return p;
}

template <class T, class Acc>
__device__ inline T finish(Acc a, bool mean, double scale) {
    using C = typename compute_type<T>::type;
    return mean ? T(C(double(a) * scale)) : T(C(a));
}

// One block per (output, split); a split covers reduced values [s*chunk, (s+1)*chunk).
template <class T, class Acc>
__global__ void sum_rows_kernel(const T* x, Decomp kept, Decomp red, int64_t R, int64_t chunk, T* out, Acc* partial,
                                bool mean, double scale) {
    using C = typename compute_type<T>::type;
    const int64_t k = blockIdx.x;
    const int64_t base = kept.offset(k);
    const int64_t r0 = int64_t(blockIdx.y) * chunk, r1 = min(R, r0 + chunk);
    Acc a = 0;
    for (int64_t r = r0 + threadIdx.x; r < r1; r += blockDim.x) a += Acc(C(x[base + red.offset(r)]));
    a = block_reduce(a, SumOp{});
    if (threadIdx.x != 0) return;
    if (partial) {
        partial[k * gridDim.y + blockIdx.y] = a;
    } else {
        out[k] = finish<T>(a, mean, scale);
    }
}

// One thread per (output, split), walking its reduced values in order.
template <class T, class Acc>
__global__ void sum_cols_kernel(const T* x, Decomp kept, Decomp red, int64_t n_out, int64_t R, int64_t chunk, T* out,
                                Acc* partial, bool mean, double scale) {
    using C = typename compute_type<T>::type;
    const int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (k >= n_out) return;
    const int64_t base = kept.offset(k);
    const int64_t r0 = int64_t(blockIdx.y) * chunk, r1 = min(R, r0 + chunk);
    Acc a = 0;
    for (int64_t r = r0; r < r1; ++r) a += Acc(C(x[base + red.offset(r)]));
    if (partial) {
        partial[k * gridDim.y + blockIdx.y] = a;
    } else {
        out[k] = finish<T>(a, mean, scale);
    }
}

template <class T, class Acc>
__global__ void sum_finish_kernel(int64_t n, const Acc* partial, int splits, T* out, bool mean, double scale) {
    HPT_GRID_STRIDE(k, n) {
        Acc a = 0;
        for (int s = 0; s < splits; ++s) a += partial[k * splits + s];
        out[k] = finish<T>(a, mean, scale);
    }
}

template <class T, class Acc>
__global__ void sum_empty_kernel(int64_t n, T* out, bool mean, double scale) {
    HPT_GRID_STRIDE(k, n) { out[k] = finish<T>(Acc(0), mean, scale); }  // mean of nothing: NaN
}

template <class T, class Acc>
void sum_typed(const Tensor& x, const Tensor& out, const std::vector<int64_t>& dims, bool mean) {
    const int64_t n_out = out.numel();
    if (n_out == 0) return;
    const int64_t n_red = x.numel() / n_out;
    const double scale = mean ? 1.0 / double(n_red) : 1.0;
    T* po = out.data<T>();
    if (n_red == 0) return launch_linear("sum", sum_empty_kernel<T, Acc>, n_out, po, mean, scale);
    const Plan p = make_plan(x, dims);
    const int64_t R = p.R;
    // Splits: a function of the shape only, so the summation order is too.
    int64_t splits = p.rows ? std::min(ceil_div(R, 4096), std::max<int64_t>(1, ceil_div(512, n_out)))
                            : std::min(ceil_div(R, 32), std::max<int64_t>(1, ceil_div(131072, n_out)));
    splits = std::max<int64_t>(1, std::min<int64_t>(splits, 1024));
    const int64_t chunk = ceil_div(R, splits);
    splits = ceil_div(R, chunk);
    Tensor partial;
    Acc* pp = nullptr;
    if (splits > 1) {
        partial = empty({n_out * splits * int64_t(sizeof(Acc))}, DType::u8, x.device());
        pp = static_cast<Acc*>(partial.data_ptr());
    }
    cudaStream_t st = current_stream();
    if (p.rows) {
        HPT_CHECK(n_out < (int64_t(1) << 31), "sum: ", n_out, " outputs exceed the CUDA grid");
        sum_rows_kernel<T, Acc><<<dim3(unsigned(n_out), unsigned(splits)), kThreads, 0, st>>>(
            x.data<T>(), p.kept, p.red, R, chunk, po, pp, mean, scale);
    } else {
        sum_cols_kernel<T, Acc><<<dim3(unsigned(ceil_div(n_out, kThreads)), unsigned(splits)), kThreads, 0, st>>>(
            x.data<T>(), p.kept, p.red, n_out, R, chunk, po, pp, mean, scale);
    }
    HPT_CUDA_LAUNCH_CHECK(mean ? "mean" : "sum");
    if (pp) launch_linear("sum_finish", sum_finish_kernel<T, Acc>, n_out, pp, int(splits), po, mean, scale);
}

void sum_cuda(const KernelArgs& args) {
    const Tensor& x = args.in[0];
    HPT_CHECK(x.is_contiguous(), "cuda sum kernel needs a contiguous input");
    const bool mean = args.op == OpId::mean;
    const auto& dims = args.attr<ReduceAttrs>().dims;
    HPT_DISPATCH_ALL(x.dtype(), op_name(args.op), [&] {
        if constexpr (std::is_integral<scalar_t>::value) {
            sum_typed<scalar_t, long long>(x, args.out[0], dims, mean);
        } else {
            sum_typed<scalar_t, double>(x, args.out[0], dims, mean);
        }
    });
}
HPT_REGISTER_CUDA_KERNEL(sum, sum_cuda);
HPT_REGISTER_CUDA_KERNEL(mean, sum_cuda);

// ---------------------------------------------------------------- max / argmax

// Replaces (bv, bi) by (v, j) when the CPU's left-to-right scan would: the first NaN sticks, then
// the first strict maximum. j increases along a thread's walk.
template <class C>
__device__ inline void scan_step(C v, int64_t j, C& bv, int64_t& bi) {
    if (bi < 0 || (!d_isnan(bv) && (v > bv || d_isnan(v)))) bv = v, bi = j;
}

// Combines two partial results of disjoint index sets with the same rule.
template <class C>
__device__ inline void combine(C v, int64_t j, C& bv, int64_t& bi) {
    if (j < 0) return;
    if (bi < 0) {
        bv = v, bi = j;
        return;
    }
    const bool nb = d_isnan(bv), nv = d_isnan(v);
    bool take;
    if (nb || nv) {
        take = nv && (!nb || j < bi);
    } else {
        take = v > bv || (v == bv && j < bi);
    }
    if (take) bv = v, bi = j;
}

// A thread per lane (o, i) of x viewed as [outer, n, inner].
template <class T>
__global__ void max_lanes_kernel(int64_t lanes, const T* x, int64_t n, int64_t inner, T* values, int64_t* indices) {
    using C = typename compute_type<T>::type;
    HPT_GRID_STRIDE(w, lanes) {
        const int64_t o = w / inner, i = w - o * inner;
        const T* p = x + o * n * inner + i;
        C best = C(p[0]);
        int64_t bi = 0;
        for (int64_t j = 1; j < n; ++j) {
            if (d_isnan(best)) break;
            const C v = C(p[j * inner]);
            if (v > best || d_isnan(v)) best = v, bi = j;
        }
        if (values) values[w] = T(best);
        indices[w] = bi;
    }
}

// A block per lane when lanes are long and contiguous (inner == 1).
template <class T>
__global__ void max_rows_kernel(const T* x, int64_t n, T* values, int64_t* indices) {
    using C = typename compute_type<T>::type;
    __shared__ C sv[kThreads];
    __shared__ int64_t si[kThreads];
    const T* p = x + int64_t(blockIdx.x) * n;
    C bv = C(0);
    int64_t bi = -1;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) scan_step(C(p[j]), j, bv, bi);
    sv[threadIdx.x] = bv;
    si[threadIdx.x] = bi;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (int(threadIdx.x) < s) {
            C v = sv[threadIdx.x];
            int64_t i = si[threadIdx.x];
            combine(sv[threadIdx.x + s], si[threadIdx.x + s], v, i);
            sv[threadIdx.x] = v;
            si[threadIdx.x] = i;
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        if (values) values[blockIdx.x] = T(sv[0]);
        indices[blockIdx.x] = si[0];
    }
}

void max_cuda(const KernelArgs& args) {
    const Tensor& x = args.in[0];
    HPT_CHECK(x.is_contiguous(), "cuda max kernel needs a contiguous input");
    const int64_t dim = args.attr<DimAttrs>().dim;
    const bool want_values = args.op == OpId::max;
    const Tensor& idx = args.out[want_values ? 1 : 0];
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < dim; ++d) outer *= x.size(d);
    for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.size(d);
    const int64_t n = x.dim() == 0 ? 1 : x.size(dim);
    HPT_DISPATCH_ALL(x.dtype(), op_name(args.op), [&] {
        using T = scalar_t;
        T* values = want_values ? args.out[0].data<T>() : nullptr;
        if (inner == 1 && n >= 2048 && outer < (int64_t(1) << 31)) {
            if (outer == 0) return;
            max_rows_kernel<T><<<unsigned(outer), kThreads, 0, current_stream()>>>(x.data<T>(), n, values,
                                                                                    idx.data<int64_t>());
            HPT_CUDA_LAUNCH_CHECK(op_name(args.op));
        } else {
            launch_linear(op_name(args.op), max_lanes_kernel<T>, outer * inner, x.data<T>(), n, inner, values,
                          idx.data<int64_t>());
        }
    });
}
HPT_REGISTER_CUDA_KERNEL(max, max_cuda);
HPT_REGISTER_CUDA_KERNEL(argmax, max_cuda);

}  // namespace
}  // namespace hpt::cuda
