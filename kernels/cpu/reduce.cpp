// CPU kernels of sum, mean, max and argmax.
//
// sum/mean take a contiguous input and its output in keepdim form. Dims are merged into
// alternating runs of reduced and kept dims; each output element is accumulated (in double for
// floating types) by one thread in a fixed order, so results do not depend on the thread count.
#include <cstdint>
#include <cmath>
#include <vector>

#include "engine/ops/attrs.h"
#include "engine/ops/registry.h"
#include "kernels/cpu/parallel.h"

namespace hpt {
namespace {

struct Block {
    int64_t size, stride;
    bool reduced;
};

std::vector<Block> merge_blocks(const Tensor& x, const std::vector<int64_t>& dims) {
    std::vector<bool> red(size_t(x.dim()), false);
    for (int64_t d : dims) red[size_t(d)] = true;
    std::vector<Block> b;
    for (int64_t d = 0; d < x.dim(); ++d) {
        const int64_t n = x.shape()[size_t(d)];
        if (n == 1) continue;
        if (!b.empty() && b.back().reduced == red[size_t(d)]) {
            b.back().size *= n;
        } else {
            b.push_back({n, 0, red[size_t(d)]});
        }
    }
    int64_t s = 1;
    for (auto it = b.rbegin(); it != b.rend(); ++it) {
        it->stride = s;
        s *= it->size;
    }
    return b;
}

// Offsets (in elements) of every combination of the given blocks, in row-major order.
std::vector<int64_t> offsets_of(const std::vector<Block>& blocks) {
    std::vector<int64_t> off{0};
    for (const Block& b : blocks) {
        std::vector<int64_t> next;
        next.reserve(off.size() * size_t(b.size));
        for (int64_t o : off)
            for (int64_t i = 0; i < b.size; ++i) next.push_back(o + i * b.stride);
        off.swap(next);
    }
    return off;
}

template <class T, class Acc>
void sum_typed(const Tensor& x, Tensor& out, const std::vector<int64_t>& dims, bool mean) {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    const int64_t n_out = out.numel();
    const int64_t n_red = n_out == 0 ? 0 : x.numel() / n_out;
    const double scale = mean ? 1.0 / double(n_red) : 1.0;
    // Integer sums stay in integers: a conditional expression mixing Acc with double would
    // convert every sum to double and lose exactness beyond 2^53.
    auto finish = [&](Acc a) {
        using C = typename compute_type<T>::type;
        return mean ? T(C(double(a) * scale)) : T(C(a));
    };
    if (n_out == 0) return;
    if (n_red == 0) {
        for (int64_t i = 0; i < n_out; ++i) po[i] = finish(Acc(0));  // mean of nothing: NaN
        return;
    }
    std::vector<Block> blocks = merge_blocks(x, dims);
    if (blocks.empty()) {  // nothing to reduce (or a single element): copy
        for (int64_t i = 0; i < n_out; ++i) po[i] = finish(Acc(typename compute_type<T>::type(px[i])));
        return;
    }
    std::vector<Block> kept, red;
    const Block last = blocks.back();
    blocks.pop_back();
    for (const Block& b : blocks) (b.reduced ? red : kept).push_back(b);
    const std::vector<int64_t> kept_off = offsets_of(kept);
    const std::vector<int64_t> red_off = offsets_of(red);
    auto at = [&](int64_t i) { return Acc(typename compute_type<T>::type(px[i])); };

    if (last.reduced && n_out == 1 && red_off.size() == 1) {
        // One long contiguous reduction: fixed chunks, partials combined in chunk order.
        const int64_t chunk = 1 << 15;
        std::vector<Acc> part(size_t((last.size + chunk - 1) / chunk), Acc(0));
        parallel_chunks(last.size, chunk, [&](int64_t c, int64_t b, int64_t e) {
            Acc a = 0;
            for (int64_t i = b; i < e; ++i) a += at(i);
            part[size_t(c)] = a;
        });
        Acc a = 0;
        for (Acc p : part) a += p;
        po[0] = finish(a);
    } else if (last.reduced) {
        // Each output sums contiguous runs of `last.size` elements.
        parallel_for(int64_t(kept_off.size()), 1, [&](int64_t b, int64_t e) {
            for (int64_t k = b; k < e; ++k) {
                Acc a = 0;
                for (int64_t r : red_off) {
                    const int64_t base = kept_off[size_t(k)] + r;
                    for (int64_t i = 0; i < last.size; ++i) a += at(base + i);
                }
                po[k] = finish(a);
            }
        });
    } else {
        // The innermost run is kept: accumulate whole rows, vectorised across the output.
        const int64_t tile = 256;
        const int64_t tiles = (last.size + tile - 1) / tile;
        parallel_for(int64_t(kept_off.size()) * tiles, 1, [&](int64_t b, int64_t e) {
            Acc acc[tile];
            for (int64_t w = b; w < e; ++w) {
                const int64_t k = w / tiles, j0 = (w % tiles) * tile;
                const int64_t len = std::min(tile, last.size - j0);
                for (int64_t j = 0; j < len; ++j) acc[j] = 0;
                for (int64_t r : red_off) {
                    const int64_t base = kept_off[size_t(k)] + r + j0;
                    for (int64_t j = 0; j < len; ++j) acc[j] += at(base + j);
                }
                for (int64_t j = 0; j < len; ++j) po[k * last.size + j0 + j] = finish(acc[j]);
            }
        });
    }
}

void sum_kernel(const KernelArgs& args) {
    const Tensor& x = args.in[0];
    HPT_CHECK(x.is_contiguous(), "cpu sum kernel needs a contiguous input");
    const bool mean = args.op == OpId::mean;
    const auto& dims = args.attr<ReduceAttrs>().dims;
    HPT_DISPATCH_ALL(x.dtype(), op_name(args.op), [&] {
        if constexpr (std::is_integral<scalar_t>::value) {
            sum_typed<scalar_t, int64_t>(x, args.out[0], dims, mean);
        } else {
            sum_typed<scalar_t, double>(x, args.out[0], dims, mean);
        }
    });
}
HPT_REGISTER_KERNEL(sum, cpu, sum_kernel);
HPT_REGISTER_KERNEL(mean, cpu, sum_kernel);

// Max along one dim of a contiguous input viewed as [outer, n, inner]. The first maximum wins
// ties; NaN counts as the maximum (it propagates, as in PyTorch).
template <class T>
void max_typed(const Tensor& x, int64_t dim, T* values, int64_t* indices) {
    using C = typename compute_type<T>::type;
    const T* px = x.data<T>();
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < dim; ++d) outer *= x.shape()[size_t(d)];
    for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.shape()[size_t(d)];
    const int64_t n = x.dim() == 0 ? 1 : x.shape()[size_t(dim)];
    parallel_for(outer * inner, 1024, [&](int64_t b, int64_t e) {
        for (int64_t w = b; w < e; ++w) {
            const int64_t o = w / inner, i = w % inner;
            const T* p = px + o * n * inner + i;
            C best = C(p[0]);
            int64_t bi = 0;
            for (int64_t j = 1; j < n; ++j) {
                const C v = C(p[j * inner]);
                if (std::isnan(double(best))) break;
                if (v > best || std::isnan(double(v))) {
                    best = v;
                    bi = j;
                }
            }
            if (values) values[w] = T(best);
            if (indices) indices[w] = bi;
        }
    });
}

void max_kernel(const KernelArgs& args) {
    const Tensor& x = args.in[0];
    HPT_CHECK(x.is_contiguous(), "cpu max kernel needs a contiguous input");
    const int64_t dim = args.attr<DimAttrs>().dim;
    const bool want_values = args.op == OpId::max;
    Tensor& idx = args.out[want_values ? 1 : 0];
    HPT_DISPATCH_ALL(x.dtype(), op_name(args.op), [&] {
        max_typed<scalar_t>(x, dim, want_values ? args.out[0].data<scalar_t>() : nullptr, idx.data<int64_t>());
    });
}
HPT_REGISTER_KERNEL(max, cpu, max_kernel);
HPT_REGISTER_KERNEL(argmax, cpu, max_kernel);

}  // namespace
}  // namespace hpt
