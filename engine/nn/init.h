// Parameter initialisation as PyTorch defines it (so that our models start where torch's do).
#pragma once
#include "engine/core/random.h"
#include "engine/core/tensor.h"
#include <cstdint>

namespace hpt::nn {

// fan_in = size(1) * receptive field; fan_out = size(0) * receptive field.
int64_t fan_in(const Tensor& w);
int64_t fan_out(const Tensor& w);

// N(0, gain / sqrt(fan)), gain sqrt(2) for ReLU ("kaiming_normal_(mode=fan_out or fan_in)").
void kaiming_normal_(const Tensor& w, int64_t fan, Generator& g);
// U(-b, b) with b = 1/sqrt(fan_in): PyTorch's default for Conv2d/Linear weights and biases
// (kaiming_uniform_ with a = sqrt(5) reduces to this bound).
void default_uniform_(const Tensor& t, int64_t fan_in, Generator& g);

}  // namespace hpt::nn
