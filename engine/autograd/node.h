// The autograd graph: nodes that turn output gradients into input gradients.
//
// The rule on adding versus overwriting:
//   * every kernel and every backward formula returns FRESH gradients (it overwrites its outputs);
//   * the engine sums gradients that reach the same input from several uses;
//   * a leaf's AccumulateGrad adds into leaf.grad in place when it exists (so the views into a
//     module's flat gradient buffer accumulate across backward calls until zero_grad), and
//     otherwise sets leaf.grad to a new contiguous tensor.
// Tensors saved for backward are detached aliases: the graph never owns its own outputs, so there
// are no reference cycles, and in-place changes to them after saving are detected by version.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/core/tensor.h"
#include "engine/ops/registry.h"

namespace hpt {

struct Node;

struct Edge {
    std::shared_ptr<Node> node;  // null: the input needs no gradient
    int input_nr = 0;            // which gradient slot of `node` this edge feeds
};

struct Node {
    virtual ~Node() = default;
    // grad_out has one entry per output of the op (zeros for float outputs that got no gradient,
    // undefined for integer outputs). Returns one gradient per entry of `next` (undefined = none).
    virtual std::vector<Tensor> apply(const std::vector<Tensor>& grad_out) = 0;
    virtual std::string name() const = 0;
    virtual void release() {}  // drop saved tensors once backward is done

    std::vector<Edge> next;
    int n_outputs = 1;
    // Shape/dtype of each output, to materialise zero gradients for outputs nobody used.
    std::vector<Shape> out_shapes;
    std::vector<DType> out_dtypes;
    Device out_device;
    bool released = false;
};

// What a backward formula sees.
struct InputMeta {
    Shape shape;
    DType dtype;
    Device device;
    bool needs_grad;
};

struct BackwardCtx {
    OpId op;
    const void* attrs;
    const std::vector<Tensor>& saved;
    const std::vector<Tensor>& grad_out;
    const std::vector<InputMeta>& inputs;
    template <class A> const A& attr() const { return *static_cast<const A*>(attrs); }
    bool needs_grad(size_t i) const { return i < inputs.size() && inputs[i].needs_grad; }
};

using BackwardFn = std::vector<Tensor> (*)(const BackwardCtx&);

// One backward formula per Diff/View op; declared here, defined next to each op's front-end.
#define HPT_BWD_DECL_Diff(name) std::vector<Tensor> backward_##name(const BackwardCtx&);
#define HPT_BWD_DECL_View(name) std::vector<Tensor> backward_##name(const BackwardCtx&);
#define HPT_BWD_DECL_NoGrad(name)
#define HPT_BWD_DECL_Kernel(name)
#define HPT_OP(name, nin, nout, kind) HPT_BWD_DECL_##kind(name)
#include "engine/ops/ops.def"
#undef HPT_OP

BackwardFn backward_fn(OpId op);  // nullptr for NoGrad/Kernel ops

// Runs backward from `root` (see Tensor::backward).
void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph);

}  // namespace hpt
