// Host-side geometry that the CPU and the CUDA kernels read their operands by, defined once so
// that both backends see a tensor the same way.
#pragma once
#include <algorithm>
#include <cstdint>

#include "engine/core/error.h"
#include "engine/core/tensor.h"

namespace hpt {

// A contiguous tensor seen around one dim: [outer, n, inner] (index_select, gather along `dim`).
struct Around {
    int64_t outer = 1, n = 1, inner = 1;
};

inline Around around(const Tensor& t, int64_t dim) {
    Around a;
    for (int64_t d = 0; d < dim; ++d) a.outer *= t.size(d);
    a.n = t.size(dim);
    for (int64_t d = dim + 1; d < t.dim(); ++d) a.inner *= t.size(d);
    return a;
}

// A matrix operand as GEMM sees it: row-major with leading dimension ld, possibly transposed.
struct GemmOperand {
    bool trans;
    int64_t ld;
};

// Both the row-major ([.., r, c] with unit column stride) and the column-major (a transposed
// view) layouts go to GEMM without a copy; the front-end makes anything else contiguous. The
// stride of a dim of size 1 is never used, so it may be anything (contiguous() keeps such views:
// a [1, 1] slice with strides [2, 2] is contiguous).
inline GemmOperand gemm_operand(const Tensor& t) {
    const int64_t r = t.size(-2), c = t.size(-1);
    const int64_t sr = t.stride(-2), sc = t.stride(-1);
    if ((c <= 1 || sc == 1) && (r <= 1 || sr >= std::max<int64_t>(c, 1)))
        return {false, r <= 1 ? std::max<int64_t>(c, 1) : sr};
    if ((r <= 1 || sr == 1) && (c <= 1 || sc >= std::max<int64_t>(r, 1)))
        return {true, c <= 1 ? std::max<int64_t>(r, 1) : sc};
    HPT_THROW("gemm operand with strides ", shape_str(t.strides()), " is neither row- nor column-major");
}

}  // namespace hpt
