// Helpers for op front-ends: decide whether to record, and record an op into the graph.
#pragma once
#include <initializer_list>
#include <memory>
#include <vector>

#include "engine/autograd/grad_mode.h"
#include "engine/autograd/node.h"

namespace hpt {

// True when grad mode is on and any defined input requires grad.
bool should_record(std::initializer_list<Tensor> inputs);
bool should_record(const std::vector<Tensor>& inputs);

// Records `op` with its inputs and outputs. `saved` tensors are stored detached (with their
// versions checked at backward); `attrs` is kept alive for the backward formula.
void record(OpId op, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            std::shared_ptr<const void> attrs = nullptr, std::vector<Tensor> saved = {});

template <class A>
std::shared_ptr<const void> keep(const A& a) {
    return std::make_shared<const A>(a);
}

}  // namespace hpt
