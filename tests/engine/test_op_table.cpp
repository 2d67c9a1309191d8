// The op table (engine/ops/ops.def) is the single source of truth: every op in it must have a CPU
// kernel (unless it is a view), every differentiable op a backward formula and a gradient check
// (tests/engine/test_gradcheck.cpp). Adding an op to ops.def without them fails here, naming it.
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "engine/autograd/node.h"
#include "engine/ops/registry.h"
#include "tests/support/gradcheck.h"

using namespace hpt;

namespace {

bool differentiable(OpKind k) { return k == OpKind::Diff || k == OpKind::View; }

std::string describe(int i) {
    const OpInfo& info = op_info(OpId(i));
    return str("op '", info.name, "' (", op_kind_name(info.kind), ", ", info.n_in, " inputs, ", info.n_out,
               " outputs)");
}

}  // namespace

TEST_CASE("the op table has unique, non-empty names and sane arities", "[op_table]") {
    REQUIRE(kNumOps > 0);
    std::set<std::string> names;
    for (int i = 0; i < kNumOps; ++i) {
        const OpInfo& info = op_info(OpId(i));
        INFO(describe(i));
        REQUIRE(info.name != nullptr);
        CHECK(std::string(info.name).size() > 0);
        CHECK(names.insert(info.name).second);
        CHECK(info.n_in >= -1);
        CHECK(info.n_out >= 0);
        // A differentiable op produces something to differentiate.
        if (differentiable(info.kind)) CHECK(info.n_out >= 1);
        CHECK(std::string(op_kind_name(info.kind)) != "?");
    }
}

TEST_CASE("every non-view op has a CPU kernel", "[op_table]") {
    for (int i = 0; i < kNumOps; ++i) {
        const OpId op = OpId(i);
        const OpInfo& info = op_info(op);
        INFO(describe(i) << " has no CPU kernel: register one with HPT_REGISTER_KERNEL(" << info.name
                         << ", cpu, ...) in kernels/cpu/");
        CHECK(supports(op, DeviceType::cpu));
        if (info.kind != OpKind::View) CHECK(find_kernel(op, DeviceType::cpu) != nullptr);
    }
}

TEST_CASE("view ops have no kernels and run on every device", "[op_table]") {
    for (int i = 0; i < kNumOps; ++i) {
        const OpId op = OpId(i);
        if (op_info(op).kind != OpKind::View) continue;
        INFO(describe(i));
        CHECK(find_kernel(op, DeviceType::cpu) == nullptr);
        CHECK(find_kernel(op, DeviceType::cuda) == nullptr);
        CHECK(supports(op, DeviceType::cpu));
        CHECK(supports(op, DeviceType::cuda));
    }
}

TEST_CASE("every differentiable op has a gradient check", "[op_table]") {
    int n_checked = 0;
    for (int i = 0; i < kNumOps; ++i) {
        const OpInfo& info = op_info(OpId(i));
        if (!differentiable(info.kind)) continue;
        INFO(describe(i) << " has no gradient check: add HPT_GRADCHECK_CASE(" << info.name
                         << ") to tests/engine/test_gradcheck.cpp");
        CHECK(hpt::test::has_gradcheck(info.name));
        ++n_checked;
    }
    CHECK(n_checked > 0);
}

TEST_CASE("gradient checks are registered only for differentiable ops of the table", "[op_table]") {
    // NoGrad and Kernel ops are checked through the ops that use them (relu_backward through relu);
    // a gradient-check case named after one is a mistake.
    for (int i = 0; i < kNumOps; ++i) {
        const OpInfo& info = op_info(OpId(i));
        if (differentiable(info.kind)) continue;
        INFO(describe(i) << " is not differentiable but has a gradient check");
        CHECK_FALSE(hpt::test::has_gradcheck(info.name));
    }
    CHECK_FALSE(hpt::test::has_gradcheck("no_such_op"));
}

TEST_CASE("Diff and View ops have a backward formula; NoGrad and Kernel ops have none", "[op_table]") {
    for (int i = 0; i < kNumOps; ++i) {
        const OpId op = OpId(i);
        const OpInfo& info = op_info(op);
        if (differentiable(info.kind)) {
            INFO(describe(i) << " has no backward formula (backward_" << info.name << ")");
            CHECK(backward_fn(op) != nullptr);
        } else {
            INFO(describe(i) << " is not differentiable but has a backward formula");
            CHECK(backward_fn(op) == nullptr);
        }
    }
}

TEST_CASE("op_from_name round-trips every op and throws on unknown names", "[op_table]") {
    for (int i = 0; i < kNumOps; ++i) {
        const OpId op = OpId(i);
        INFO(describe(i));
        CHECK(op_from_name(op_name(op)) == op);
        CHECK(std::string(op_name(op)) == op_info(op).name);
    }
    CHECK(op_from_name("add") == OpId::add);
    CHECK(op_from_name("conv2d") == OpId::conv2d);
    CHECK_THROWS_AS(op_from_name("no_such_op"), hpt::Error);
    CHECK_THROWS_WITH(op_from_name("no_such_op"), Catch::Contains("unknown op 'no_such_op'"));
    CHECK_THROWS_AS(op_from_name(""), hpt::Error);
    CHECK_THROWS_AS(op_from_name("Add"), hpt::Error);  // names are case-sensitive
}
