// Modules: named parameters, buffers and submodules, train/eval mode, and flat storage.
//
// After flatten(), every parameter of the module tree is a view into ONE contiguous buffer and
// every gradient a view into another, at the same offsets. Autograd accumulates into those views,
// zero_grad() is one fill, and optimizers, the momentum-encoder update and gradient all-reduce each
// run as one kernel over the whole buffer (or over the trainable ranges of it).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/tensor.h"

namespace hpt::nn {

class Module {
public:
    virtual ~Module() = default;

    // Name of this module's kind, for messages ("Conv2d", "ResNet").
    virtual std::string kind() const = 0;

    std::vector<std::pair<std::string, Tensor>> named_parameters() const;
    std::vector<std::pair<std::string, Tensor>> named_buffers() const;
    std::vector<Tensor> parameters() const;
    // Parameters and buffers in PyTorch's state_dict order: each module's own parameters, then its
    // own buffers, then its children's, recursively.
    std::vector<std::pair<std::string, Tensor>> named_state() const;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const { return children_; }

    void train(bool on = true);
    void eval() { train(false); }
    bool is_training() const { return training_; }

    // Moves parameters into one flat buffer (and gradients into another) on `device`; buffers
    // (BN running stats) move to `device` too. Call once, after building the tree.
    void flatten(Device device = Device::cpu());
    bool is_flat() const { return flat_params_.defined(); }
    const Tensor& flat_params() const { return flat_params_; }
    const Tensor& flat_grads() const { return flat_grads_; }
    // [begin, end) element ranges of the flat buffer that hold parameters with requires_grad,
    // merged where adjacent. Padding between parameters is never inside a range.
    std::vector<std::pair<int64_t, int64_t>> trainable_ranges() const;
    void zero_grad();
    int64_t num_parameters() const;

    // Copies parameter and buffer values from a module of identical structure.
    void copy_state_from(const Module& other);

protected:
    Tensor& register_parameter(const std::string& name, Tensor value);
    Tensor& register_buffer(const std::string& name, Tensor value);
    template <class M>
    std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
        children_.emplace_back(name, m);
        return m;
    }

private:
    void collect(const std::string& prefix, bool params, std::vector<std::pair<std::string, Tensor>>& out) const;
    void collect_state(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const;

    std::vector<std::pair<std::string, Tensor>> params_, buffers_;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
    bool training_ = true;
    Tensor flat_params_, flat_grads_;
};

// Modules with one input and one output.
class Layer : public Module {
public:
    virtual Tensor forward(const Tensor& x) = 0;
    Tensor operator()(const Tensor& x) { return forward(x); }
};

}  // namespace hpt::nn
