#include "engine/optim/sgd.h"

#include "engine/autograd/grad_mode.h"
#include "engine/ops/ops.h"

namespace hpt::optim {

SGD::SGD(nn::Module& model, SgdOptions opt) : model_(model), opt_(opt) {
    HPT_CHECK(model.is_flat(), "SGD needs a flattened module (call flatten() first)");
    HPT_CHECK(opt.lr >= 0 && opt.momentum >= 0 && opt.weight_decay >= 0, "SGD: negative lr ", opt.lr, ", momentum ",
              opt.momentum, " or weight decay ", opt.weight_decay);
    buf_ = zeros(model.flat_params().shape(), model.flat_params().dtype(), model.flat_params().device());
}

void SGD::step(double lr) {
    NoGradGuard ng;
    SgdAttrs a{lr, opt_.momentum, opt_.weight_decay};
    for (const auto& [b, e] : model_.trainable_ranges()) {
        sgd_step(model_.flat_params().slice(0, b, e), model_.flat_grads().slice(0, b, e), buf_.slice(0, b, e), a);
    }
}

}  // namespace hpt::optim
