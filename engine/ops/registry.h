// Op ids generated from ops.def, per-device kernel tables and the dispatch that runs a kernel.
//
// Kernels OVERWRITE their outputs; they never accumulate into them. Accumulation of gradients is
// the autograd engine's job (engine/autograd/engine.cpp) and the optimizers'. Outputs are
// allocated by the op's front-end (shape inference and checks happen there, once for all devices).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "engine/core/tensor.h"

namespace hpt {

enum class OpId : int16_t {
#define HPT_OP(name, nin, nout, kind) name,
#include "engine/ops/ops.def"
#undef HPT_OP
};

enum class OpKind : uint8_t { Diff, View, NoGrad, Kernel };

struct OpInfo {
    const char* name;
    int n_in;   // -1: variadic
    int n_out;
    OpKind kind;
};

constexpr int kNumOps = 0
#define HPT_OP(name, nin, nout, kind) +1
#include "engine/ops/ops.def"
#undef HPT_OP
    ;

const OpInfo& op_info(OpId op);
inline const char* op_name(OpId op) { return op_info(op).name; }
// Throws for unknown names.
OpId op_from_name(const std::string& name);
const char* op_kind_name(OpKind k);

// What a kernel receives. Tensors may be undefined where ops.def says an input is optional.
struct KernelArgs {
    OpId op;
    const Tensor* in;
    int n_in;
    Tensor* out;
    int n_out;
    const void* attrs;
    template <class A> const A& attr() const { return *static_cast<const A*>(attrs); }
};
using KernelFn = void (*)(const KernelArgs&);

void register_kernel(OpId op, DeviceType dev, KernelFn fn);
KernelFn find_kernel(OpId op, DeviceType dev);  // nullptr when absent
// View ops are supported everywhere; other ops need a registered kernel.
bool supports(OpId op, DeviceType dev);

// Runs `op`'s kernel on the device its tensors share. Throws when they are on different devices
// (0-dim CPU tensors count as numbers and may accompany any device) or when the device lacks the op.
void run_kernel(OpId op, std::initializer_list<Tensor> in, std::initializer_list<Tensor> out,
                const void* attrs = nullptr);
void run_kernel(OpId op, const std::vector<Tensor>& in, const std::vector<Tensor>& out,
                const void* attrs = nullptr);

// The device that all defined tensors share; throws naming `op` and every tensor's device if not.
Device common_device(const char* op, std::initializer_list<Tensor> ts);
Device common_device(const char* op, const std::vector<Tensor>& ts);

}  // namespace hpt

#define HPT_CONCAT_(a, b) a##b
#define HPT_CONCAT(a, b) HPT_CONCAT_(a, b)
// Registers `fn` as the kernel of ops.def's `op` on device type `dev` (cpu or cuda).
#define HPT_REGISTER_KERNEL(op, dev, fn)                                                     \
    static const bool HPT_CONCAT(hpt_kernel_reg_##op##_##dev##_, __LINE__) =                 \
        (::hpt::register_kernel(::hpt::OpId::op, ::hpt::DeviceType::dev, fn), true)
