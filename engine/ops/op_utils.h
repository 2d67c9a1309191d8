// Argument checks shared by op front-ends. Every message names the op and the tensors involved.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>

#include "engine/core/tensor.h"
#include "engine/ops/registry.h"

namespace hpt {

// "f32[64, 3, 32, 32] on cpu"
std::string desc(const Tensor& t);

void check_defined(const char* op, std::initializer_list<Tensor> ts);
void check_same_dtype(const char* op, std::initializer_list<Tensor> ts);
void check_floating(const char* op, const Tensor& t);
void check_dtype(const char* op, const Tensor& t, DType want, const char* what);
void check_rank(const char* op, const Tensor& t, int64_t rank, const char* what);

}  // namespace hpt
