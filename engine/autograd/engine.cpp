// The backward engine: topological traversal of the graph from a root, gradient summation per
// input slot, leaf accumulation, and freeing of the graph afterwards.
#include <cstdint>
#include <algorithm>
#include <unordered_map>

#include "engine/autograd/grad_mode.h"
#include "engine/autograd/node.h"
#include "engine/autograd/record.h"
#include "engine/ops/ops.h"

namespace hpt {

namespace {
thread_local bool g_grad_enabled = true;

// A saved tensor plus the storage version it had when saved.
struct Saved {
    Tensor t;
    uint64_t version;
};

struct OpNode final : Node {
    OpId op;
    std::shared_ptr<const void> attrs;
    std::vector<Saved> saved;
    std::vector<InputMeta> inputs;

    std::string name() const override { return op_name(op); }

    std::vector<Tensor> apply(const std::vector<Tensor>& grad_out) override {
        HPT_CHECK(!released, "backward through the graph of '", op_name(op),
                  "' a second time: its saved tensors were freed after the first backward "
                  "(pass retain_graph=true to the first one)");
        std::vector<Tensor> saved_t;
        saved_t.reserve(saved.size());
        for (const Saved& s : saved) {
            if (s.t.defined()) {
                HPT_CHECK(s.t.storage()->version() == s.version, "a tensor of shape ",
                          shape_str(s.t.shape()), " saved for the backward of '", op_name(op),
                          "' was modified in place after the forward");
            }
            saved_t.push_back(s.t);
        }
        BackwardCtx ctx{op, attrs.get(), saved_t, grad_out, inputs};
        std::vector<Tensor> g = backward_fn(op)(ctx);
        HPT_CHECK(g.size() == inputs.size(), "backward of '", op_name(op), "' returned ", g.size(),
                  " gradients for ", inputs.size(), " inputs");
        for (size_t i = 0; i < g.size(); ++i) {
            if (!g[i].defined() || !inputs[i].needs_grad) {
                g[i] = Tensor();
                continue;
            }
            HPT_CHECK(g[i].shape() == inputs[i].shape, "backward of '", op_name(op),
                      "' gave input ", i, " a gradient of shape ", shape_str(g[i].shape()),
                      " but the input has shape ", shape_str(inputs[i].shape));
        }
        return g;
    }

    void release() override {
        saved.clear();
        attrs.reset();
        released = true;
    }
};

// True when `g` is the only handle to a contiguous tensor that spans its whole storage, i.e. a
// fresh kernel output that the engine's buffer alone holds.
bool owns_whole_storage(const Tensor& g) {
    return g.impl_ptr().use_count() == 1 && g.storage().use_count() == 1 && g.is_contiguous() && g.offset() == 0 &&
           size_t(g.numel()) * g.element_size() == g.storage()->nbytes() && !g.requires_grad();
}

struct AccumulateGrad final : Node {
    std::weak_ptr<TensorImpl> leaf;

    std::string name() const override { return "AccumulateGrad"; }

    std::vector<Tensor> apply(const std::vector<Tensor>& grad_out) override {
        std::shared_ptr<TensorImpl> impl = leaf.lock();
        const Tensor& g = grad_out[0];
        if (!impl || !g.defined()) return {};
        Tensor t(impl);
        HPT_CHECK(g.shape() == impl->shape, "gradient of shape ", shape_str(g.shape()),
                  " for a leaf of shape ", shape_str(impl->shape));
        if (impl->grad.defined()) {
            impl->grad.add_(g);
        } else if (owns_whole_storage(g)) {
            impl->grad = g;  // nobody else can see it: take it instead of copying
        } else {
            impl->grad = g.clone();
        }
        if (impl->post_accumulate_hook) impl->post_accumulate_hook();
        return {};
    }
};

std::shared_ptr<Node> grad_accumulator(const Tensor& leaf) {
    std::shared_ptr<Node> acc = leaf.impl()->grad_accumulator.lock();
    if (!acc) {
        auto a = std::make_shared<AccumulateGrad>();
        a->leaf = leaf.impl_ptr();
        a->n_outputs = 1;
        a->out_shapes = {leaf.shape()};
        a->out_dtypes = {leaf.dtype()};
        a->out_device = leaf.device();
        acc = a;
        leaf.impl()->grad_accumulator = acc;
    }
    return acc;
}

Edge edge_of(const Tensor& t) {
    if (!t.defined() || !t.requires_grad()) return {};
    if (t.grad_fn()) return {t.grad_fn(), t.impl()->output_nr};
    return {grad_accumulator(t), 0};
}

}  // namespace

bool grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool on) { g_grad_enabled = on; }

bool should_record(std::initializer_list<Tensor> inputs) {
    if (!g_grad_enabled) return false;
    for (const Tensor& t : inputs)
        if (t.defined() && t.requires_grad()) return true;
    return false;
}

bool should_record(const std::vector<Tensor>& inputs) {
    if (!g_grad_enabled) return false;
    for (const Tensor& t : inputs)
        if (t.defined() && t.requires_grad()) return true;
    return false;
}

void record(OpId op, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            std::shared_ptr<const void> attrs, std::vector<Tensor> saved) {
    auto node = std::make_shared<OpNode>();
    node->op = op;
    node->attrs = std::move(attrs);
    for (Tensor& s : saved) {
        if (s.defined()) {
            node->saved.push_back({s.detach(), s.storage()->version()});
        } else {
            node->saved.push_back({Tensor(), 0});
        }
    }
    node->next.reserve(inputs.size());
    node->inputs.reserve(inputs.size());
    for (const Tensor& in : inputs) {
        node->next.push_back(edge_of(in));
        if (in.defined()) {
            node->inputs.push_back({in.shape(), in.dtype(), in.device(), in.requires_grad()});
        } else {
            node->inputs.push_back({{}, DType::f32, Device::cpu(), false});
        }
    }
    node->n_outputs = int(outputs.size());
    for (size_t i = 0; i < outputs.size(); ++i) {
        const Tensor& o = outputs[i];
        node->out_shapes.push_back(o.shape());
        node->out_dtypes.push_back(o.dtype());
        node->out_device = o.device();
        if (!is_floating(o.dtype())) continue;  // indices carry no gradient
        o.impl()->grad_fn = node;
        o.impl()->output_nr = int(i);
        o.impl()->requires_grad = true;
    }
}

void run_backward(const Tensor& root, const Tensor& grad_in, bool retain_graph) {
    HPT_CHECK(root.defined(), "backward() on an undefined tensor");
    HPT_CHECK(root.requires_grad(), "backward() on a tensor that does not require grad (shape ",
              shape_str(root.shape()), "): no input of the computation had requires_grad set");
    Tensor grad = grad_in;
    if (!grad.defined()) {
        HPT_CHECK(root.numel() == 1, "backward() without a gradient needs a single-element tensor, got shape ",
                  shape_str(root.shape()));
        grad = full(root.shape(), 1.0, root.dtype(), root.device());
    }
    HPT_CHECK(grad.shape() == root.shape(), "backward(): gradient shape ", shape_str(grad.shape()),
              " does not match the tensor's shape ", shape_str(root.shape()));
    HPT_CHECK(grad.dtype() == root.dtype() && grad.device() == root.device(), "backward(): gradient ",
              dtype_name(grad.dtype()), shape_str(grad.shape()), " on ", grad.device().str(),
              " does not match the tensor's dtype and device (", dtype_name(root.dtype()), shape_str(root.shape()),
              " on ", root.device().str(), ")");
    NoGradGuard no_grad;

    Edge root_edge = edge_of(root);
    // Count, for every node reachable from the root, how many edges lead into it.
    std::unordered_map<Node*, int> deps;
    std::vector<Node*> stack{root_edge.node.get()};
    deps[root_edge.node.get()] = 0;
    std::vector<std::shared_ptr<Node>> keep_alive{root_edge.node};
    while (!stack.empty()) {
        Node* n = stack.back();
        stack.pop_back();
        for (const Edge& e : n->next) {
            if (!e.node) continue;
            auto it = deps.find(e.node.get());
            if (it == deps.end()) {
                deps[e.node.get()] = 1;
                stack.push_back(e.node.get());
                keep_alive.push_back(e.node);
            } else {
                ++it->second;
            }
        }
    }

    std::unordered_map<Node*, std::vector<Tensor>> buffers;
    auto add_grad = [&](Node* n, int slot, const Tensor& g) {
        std::vector<Tensor>& b = buffers[n];
        if (b.empty()) b.resize(size_t(n->n_outputs));
        if (!b[slot].defined()) {
            b[slot] = g;
        } else {
            b[slot] = add(b[slot], g);
        }
    };
    add_grad(root_edge.node.get(), root_edge.input_nr, grad);

    std::vector<Node*> ready{root_edge.node.get()};
    while (!ready.empty()) {
        Node* n = ready.back();
        ready.pop_back();
        std::vector<Tensor> gout = std::move(buffers[n]);
        buffers.erase(n);
        gout.resize(size_t(n->n_outputs));
        for (int i = 0; i < n->n_outputs; ++i) {
            if (!gout[i].defined() && is_floating(n->out_dtypes[i]))
                gout[i] = zeros(n->out_shapes[i], n->out_dtypes[i], n->out_device);
        }
        std::vector<Tensor> gin = n->apply(gout);
        for (size_t i = 0; i < n->next.size(); ++i) {
            const Edge& e = n->next[i];
            if (!e.node) continue;
            if (i < gin.size() && gin[i].defined()) add_grad(e.node.get(), e.input_nr, gin[i]);
            if (--deps[e.node.get()] == 0) ready.push_back(e.node.get());
        }
        if (!retain_graph) {
            n->release();
            n->next.clear();
        }
    }
}

BackwardFn backward_fn(OpId op) {
#define HPT_BWD_PTR_Diff(name) &backward_##name,
#define HPT_BWD_PTR_View(name) &backward_##name,
#define HPT_BWD_PTR_NoGrad(name) nullptr,
#define HPT_BWD_PTR_Kernel(name) nullptr,
    static const BackwardFn table[] = {
#define HPT_OP(name, nin, nout, kind) HPT_BWD_PTR_##kind(name)
#include "engine/ops/ops.def"
#undef HPT_OP
    };
    return table[int(op)];
}

}  // namespace hpt
