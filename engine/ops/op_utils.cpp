#include "engine/ops/op_utils.h"
#include <cstdint>

namespace hpt {

std::string desc(const Tensor& t) {
    if (!t.defined()) return "undefined";
    return str(dtype_name(t.dtype()), shape_str(t.shape()), " on ", t.device().str());
}

void check_defined(const char* op, std::initializer_list<Tensor> ts) {
    int i = 0;
    for (const Tensor& t : ts) {
        HPT_CHECK(t.defined(), "op '", op, "': argument ", i, " is an undefined tensor");
        ++i;
    }
}

void check_same_dtype(const char* op, std::initializer_list<Tensor> ts) {
    const Tensor* first = nullptr;
    for (const Tensor& t : ts) {
        if (!t.defined()) continue;
        if (!first) {
            first = &t;
        } else {
            HPT_CHECK(t.dtype() == first->dtype(), "op '", op, "': dtypes differ: ", desc(*first), " and ",
                      desc(t));
        }
    }
}

void check_floating(const char* op, const Tensor& t) {
    HPT_CHECK(is_floating(t.dtype()), "op '", op, "' needs a floating-point tensor, got ", desc(t));
}

void check_dtype(const char* op, const Tensor& t, DType want, const char* what) {
    HPT_CHECK(t.dtype() == want, "op '", op, "': ", what, " must be ", dtype_name(want), ", got ", desc(t));
}

void check_rank(const char* op, const Tensor& t, int64_t rank, const char* what) {
    HPT_CHECK(t.dim() == rank, "op '", op, "': ", what, " must have rank ", rank, ", got ", desc(t));
}

}  // namespace hpt
