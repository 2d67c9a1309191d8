// SGD with momentum and (coupled) weight decay, PyTorch semantics without dampening or Nesterov:
//   b = momentum * b + (g + wd * p);  p -= lr * b
// run as one fused kernel per trainable range of a flattened module's parameter buffer.
#pragma once
#include "engine/nn/module.h"

namespace hpt::optim {

struct SgdOptions {
    double lr = 0.03;
    double momentum = 0.9;
    double weight_decay = 1e-4;
};

class SGD {
public:
    SGD(nn::Module& model, SgdOptions opt);
    // One update with learning rate `lr` (the schedule's value for this step).
    void step(double lr);
    void step() { step(opt_.lr); }
    const SgdOptions& options() const { return opt_; }
    // The momentum buffer, flat like the parameters (for checkpoints).
    const Tensor& momentum_buffer() const { return buf_; }

private:
    nn::Module& model_;
    SgdOptions opt_;
    Tensor buf_;
};

}  // namespace hpt::optim
