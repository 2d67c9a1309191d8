// CPU kernels of cat, index_select/index_add and gather/scatter_add, and the fused SGD step.
// Indexing kernels view contiguous tensors as [outer, n, inner] around the indexed dim and check
// every index, naming the bad value.
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/ops/attrs.h"
#include "engine/ops/registry.h"
#include "kernels/cpu/parallel.h"
#include "kernels/layout.h"

namespace hpt {
namespace {

void check_index(const char* op, int64_t v, int64_t n, int64_t at) {
    HPT_CHECK(v >= 0 && v < n, "op '", op, "': index ", v, " at position ", at, " is out of range [0, ", n, ")");
}

void cat_kernel(const KernelArgs& args) {
    const int64_t dim = args.attr<DimAttrs>().dim;
    const KernelFn copy = find_kernel(OpId::copy, DeviceType::cpu);
    int64_t at = 0;
    for (int i = 0; i < args.n_in; ++i) {
        const int64_t n = args.in[i].size(dim);
        Tensor dst = args.out[0].detach().slice(dim, at, at + n);
        KernelArgs c{OpId::copy, &args.in[i], 1, &dst, 1, nullptr};
        copy(c);
        at += n;
    }
}
HPT_REGISTER_KERNEL(cat, cpu, cat_kernel);

void index_select_kernel(const KernelArgs& args) {
    const Tensor &x = args.in[0], &index = args.in[1];
    const int64_t dim = args.attr<DimAttrs>().dim;
    const Around ax = around(x, dim);
    const int64_t k = index.numel();
    const int64_t* pi = index.data<int64_t>();
    for (int64_t j = 0; j < k; ++j) check_index("index_select", pi[j], ax.n, j);
    const size_t row = size_t(ax.inner) * x.element_size();
    const char* px = static_cast<const char*>(x.data_ptr());
    char* po = static_cast<char*>(args.out[0].data_ptr());
    parallel_for(ax.outer * k, 64, [&](int64_t b, int64_t e) {
        for (int64_t w = b; w < e; ++w) {
            const int64_t o = w / k, j = w % k;
            std::memcpy(po + size_t(w) * row, px + size_t(o * ax.n + pi[j]) * row, row);
        }
    });
}
HPT_REGISTER_KERNEL(index_select, cpu, index_select_kernel);

// out = zeros; out[.., index[j], ..] += src[.., j, ..]. Parallel over `outer` only, so the
// additions into a row happen in index order (deterministic with repeated indices).
void index_add_kernel(const KernelArgs& args) {
    const Tensor &index = args.in[0], &src = args.in[1];
    const Tensor& out = args.out[0];
    const int64_t dim = args.attr<DimAttrs>().dim;
    const Around ao = around(out, dim);
    const int64_t k = index.numel();
    const int64_t* pi = index.data<int64_t>();
    for (int64_t j = 0; j < k; ++j) check_index("index_add", pi[j], ao.n, j);
    HPT_DISPATCH_FLOAT_BF16(out.dtype(), "index_add", [&] {
        using C = typename compute_type<scalar_t>::type;
        const scalar_t* ps = src.data<scalar_t>();
        scalar_t* po = out.data<scalar_t>();
        parallel_for(ao.outer, 1, [&](int64_t b, int64_t e) {
            std::vector<C> acc(size_t(ao.n * ao.inner));
            for (int64_t o = b; o < e; ++o) {
                std::fill(acc.begin(), acc.end(), C(0));
                for (int64_t j = 0; j < k; ++j) {
                    const scalar_t* s = ps + (o * k + j) * ao.inner;
                    C* a = acc.data() + pi[j] * ao.inner;
                    for (int64_t i = 0; i < ao.inner; ++i) a[i] += C(s[i]);
                }
                for (int64_t i = 0; i < ao.n * ao.inner; ++i) po[o * ao.n * ao.inner + i] = scalar_t(acc[size_t(i)]);
            }
        });
    });
}
HPT_REGISTER_KERNEL(index_add, cpu, index_add_kernel);

// gather: out[i..][j][k..] = x[i..][index[i..][j][k..]][k..] along dim. Index and out share a shape.
void gather_kernel(const KernelArgs& args) {
    const Tensor &x = args.in[0], &index = args.in[1];
    const Tensor& out = args.out[0];
    const int64_t dim = args.attr<DimAttrs>().dim;
    const int64_t* pi = index.data<int64_t>();
    const Shape& is = index.shape();
    const Shape xs = contiguous_strides(x.shape());
    const int64_t n = index.numel();
    for (int64_t w = 0; w < n; ++w) check_index("gather", pi[w], x.size(dim), w);
    HPT_DISPATCH_ALL(x.dtype(), "gather", [&] {
        const scalar_t* px = x.data<scalar_t>();
        scalar_t* po = out.data<scalar_t>();
        parallel_for(n, 4096, [&](int64_t b, int64_t e) {
            for (int64_t w = b; w < e; ++w) {
                int64_t rem = w, off = 0;
                for (int64_t d = int64_t(is.size()) - 1; d >= 0; --d) {
                    const int64_t c = rem % is[size_t(d)];
                    rem /= is[size_t(d)];
                    off += (d == dim ? pi[w] : c) * xs[size_t(d)];
                }
                po[w] = px[off];
            }
        });
    });
}
HPT_REGISTER_KERNEL(gather, cpu, gather_kernel);

// out = zeros; out[index positions] += src. Sequential: scattered writes may collide.
void scatter_add_kernel(const KernelArgs& args) {
    const Tensor &index = args.in[0], &src = args.in[1];
    const Tensor& out = args.out[0];
    const int64_t dim = args.attr<DimAttrs>().dim;
    const int64_t* pi = index.data<int64_t>();
    const Shape& is = index.shape();
    const Shape os = contiguous_strides(out.shape());
    const int64_t n = index.numel();
    for (int64_t w = 0; w < n; ++w) check_index("scatter_add", pi[w], out.size(dim), w);
    HPT_DISPATCH_FLOAT_BF16(out.dtype(), "scatter_add", [&] {
        using C = typename compute_type<scalar_t>::type;
        const scalar_t* ps = src.data<scalar_t>();
        scalar_t* po = out.data<scalar_t>();
        std::vector<C> acc(size_t(out.numel()), C(0));
        for (int64_t w = 0; w < n; ++w) {
            int64_t rem = w, off = 0;
            for (int64_t d = int64_t(is.size()) - 1; d >= 0; --d) {
                const int64_t c = rem % is[size_t(d)];
                rem /= is[size_t(d)];
                off += (d == dim ? pi[w] : c) * os[size_t(d)];
            }
            acc[size_t(off)] += C(ps[w]);
        }
        for (int64_t i = 0; i < out.numel(); ++i) po[i] = scalar_t(acc[size_t(i)]);
    });
}
HPT_REGISTER_KERNEL(scatter_add, cpu, scatter_add_kernel);

// p -= lr * (b = momentum * b + g + wd * p): one pass over the flat buffers.
void sgd_step_kernel(const KernelArgs& args) {
    const SgdAttrs& a = args.attr<SgdAttrs>();
    HPT_DISPATCH_FLOAT(args.in[0].dtype(), "sgd_step", [&] {
        using T = scalar_t;
        T* p = args.in[0].data<T>();
        const T* g = args.in[1].data<T>();
        T* b = args.in[2].data<T>();
        const T lr = T(a.lr), mom = T(a.momentum), wd = T(a.weight_decay);
        parallel_for(args.in[0].numel(), 1 << 15, [&](int64_t s, int64_t e) {
            for (int64_t i = s; i < e; ++i) {
                const T d = g[i] + wd * p[i];
                b[i] = mom * b[i] + d;
                p[i] -= lr * b[i];
            }
        });
    });
}
HPT_REGISTER_KERNEL(sgd_step, cpu, sgd_step_kernel);

}  // namespace
}  // namespace hpt
