// The two ops MoCo adds to the engine.
#pragma once
#include "engine/core/tensor.h"

namespace hpt {

// MoCo's InfoNCE loss with the positive key first:
//   s_i0 = q_i . k_i / T,  s_ij = q_i . queue_j / T (j = 1..K),  loss = mean_i (logsumexp_j s_ij - s_i0)
// q, k: [N, D]; queue: [K, D]. One op: the N x (K+1) logits are never stored (tiles of the queue
// with an online log-sum-exp), and the backward recomputes them tile by tile. Differentiable in
// all three inputs (MoCo needs only q).
Tensor info_nce(const Tensor& q, const Tensor& k, const Tensor& queue, double temperature);

// target = m * target + (1 - m) * source over whole (flat) buffers, in place: the key encoder's
// update. Not recorded by autograd.
void momentum_update(const Tensor& target, const Tensor& source, double m);

}  // namespace hpt
