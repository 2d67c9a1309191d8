// Strided, broadcasting iteration over up to N operands: the machinery of every elementwise CPU
// kernel. Operand 0 is the output; inputs are broadcast to its shape (stride 0 on broadcast dims).
// Dimensions are reordered innermost-first and merged where all operands are contiguous across
// them, so the common case is one long loop with unit strides that the compiler vectorises.
#pragma once
#include <array>
#include <cstdint>

#include "engine/core/tensor.h"
#include "kernels/cpu/parallel.h"

namespace hpt {

constexpr int kMaxLoopDims = 12;

template <int N>
struct LoopPlan {
    int ndim = 0;                          // after merging; dim 0 is the innermost
    int64_t size[kMaxLoopDims] = {};
    int64_t stride[N][kMaxLoopDims] = {};  // bytes
    char* base[N] = {};
    int64_t numel = 1;
};

template <int N>
LoopPlan<N> make_loop_plan(const std::array<const Tensor*, N>& ops) {
    LoopPlan<N> p;
    const Shape& out = ops[0]->shape();
    const int nd = int(out.size());
    HPT_CHECK(nd <= kMaxLoopDims, "tensors of rank ", nd, " exceed the supported rank ", kMaxLoopDims);
    for (int i = 0; i < N; ++i) p.base[i] = static_cast<char*>(ops[i]->data_ptr());
    // Innermost first, dropping size-1 dims.
    for (int d = nd - 1; d >= 0; --d) {
        if (out[size_t(d)] == 1) continue;
        const int k = p.ndim++;
        p.size[k] = out[size_t(d)];
        for (int i = 0; i < N; ++i) {
            const Tensor& t = *ops[i];
            const int td = d - (nd - int(t.dim()));
            const bool broadcast = td < 0 || t.shape()[size_t(td)] == 1;
            p.stride[i][k] = broadcast ? 0 : t.strides()[size_t(td)] * int64_t(t.element_size());
        }
    }
    // Merge dim k+1 into dim k when every operand steps through both as one run.
    int w = 0;
    for (int k = 1; k < p.ndim; ++k) {
        bool merge = true;
        for (int i = 0; i < N && merge; ++i) merge = p.stride[i][k] == p.stride[i][w] * p.size[w];
        if (merge) {
            p.size[w] *= p.size[k];
        } else {
            ++w;
            p.size[w] = p.size[k];
            for (int i = 0; i < N; ++i) p.stride[i][w] = p.stride[i][k];
        }
    }
    if (p.ndim > 0) p.ndim = w + 1;
    for (int k = 0; k < p.ndim; ++k) p.numel *= p.size[k];
    if (out.empty() || p.ndim == 0) p.numel = shape_numel(out);
    return p;
}

// Calls inner(ptrs, inner_strides, n) over runs of the innermost dimension, in parallel.
template <int N, class F>
void loop_run(const LoopPlan<N>& p, const F& inner) {
    if (p.numel == 0) return;
    if (p.ndim == 0) {  // a single element
        char* ptr[N];
        int64_t st[N];
        for (int i = 0; i < N; ++i) ptr[i] = p.base[i], st[i] = 0;
        inner(ptr, st, int64_t(1));
        return;
    }
    const int64_t n0 = p.size[0];
    const int64_t outer = p.numel / n0;
    const int64_t grain = std::max<int64_t>(1, 32768 / n0);
    parallel_for(outer, grain, [&](int64_t begin, int64_t end) {
        int64_t idx[kMaxLoopDims] = {};
        char* ptr[N];
        int64_t st0[N];
        for (int i = 0; i < N; ++i) st0[i] = p.stride[i][0];
        // Decompose `begin` into the outer multi-index.
        int64_t rem = begin;
        for (int k = 1; k < p.ndim; ++k) {
            idx[k] = rem % p.size[k];
            rem /= p.size[k];
        }
        for (int64_t o = begin; o < end; ++o) {
            for (int i = 0; i < N; ++i) {
                char* q = p.base[i];
                for (int k = 1; k < p.ndim; ++k) q += idx[k] * p.stride[i][k];
                ptr[i] = q;
            }
            inner(ptr, st0, n0);
            for (int k = 1; k < p.ndim; ++k) {
                if (++idx[k] < p.size[k]) break;
                idx[k] = 0;
            }
        }
    });
}

}  // namespace hpt
