// The whole pipeline on a GPU: the training loop's CUDA data path (the loader's pinned, prefetched
// batches and the augmentation kernels), the MoCo step, checkpoints and evaluation, checked against
// the CPU run of the same config, and killed and resumed. [cuda]: skipped without a GPU.
#include <catch2/catch.hpp>

#include <csignal>
#include <cmath>
#include <filesystem>
#include <string>

#include "hpt/checkpoint.h"
#include "hpt/pipeline.h"
#include "tests/hpt/tiny_run.h"
#include "tests/support/devices.h"

using namespace hpt;
using namespace hpt::pipeline;
using namespace hpt::test;
namespace fs = std::filesystem;

TEST_CASE("the pipeline on the GPU starts where the CPU run does [cuda]", "[hpt][cuda]") {
    HPT_NEED_GPU();
    const std::string dir = tmp_dir("gpu_vs_cpu");
    RunConfig cpu = load_config(write_config(dir, 3, "cpu"));
    cpu.run.out = dir + "/cpu";
    RunConfig gpu = load_config(write_config(dir, 3, "cuda"));
    gpu.run.out = dir + "/gpu";
    run_pipeline(cpu, false);
    const RunResult r = run_pipeline(gpu, false);
    CHECK(r.device == "cuda:0");
    REQUIRE(r.stages.size() == 2);
    for (const StageOutcome& s : r.stages) {
        REQUIRE(s.evals.size() == 1);
        CHECK(s.evals[0].result.knn_test_acc > 0.2);  // 10 classes: chance is 0.1
    }
    const auto a = losses(dir + "/cpu/metrics.jsonl"), b = losses(dir + "/gpu/metrics.jsonl");
    REQUIRE(a.size() == 6);
    REQUIRE(b.size() == 6);
    // The same initial weights and views (the views agree within the augmentation tolerance), f32
    // on both sides (TF32 is off by default): the first step's loss agrees closely. Later steps
    // drift apart through the updates, so only the first step of each stage is held to a bound;
    // a wrong view, step or update shows as differences of 0.1 and more.
    for (const std::string stage : {"a", "b"}) {
        const double x = std::stod(a.at({stage, 1})), y = std::stod(b.at({stage, 1}));
        INFO("stage " << stage << ": CPU loss " << x << ", GPU loss " << y);
        CHECK(std::abs(x - y) <= 1e-3 * std::abs(x));
    }
    fs::remove_all(dir);
}

TEST_CASE("a killed GPU run resumes and reproduces the uninterrupted losses bit for bit [cuda]", "[hpt][resume][cuda]") {
    HPT_NEED_GPU();
    // Bit-equality across processes needs the same cuDNN algorithms in each: heuristics instead of
    // the timed search, and only deterministic ones.
    const std::string env = "HPT_DETERMINISTIC=1 HPT_CUDNN_FIND=0";
    const std::string dir = tmp_dir("gpu_resume");
    const std::string cfg = write_config(dir, 10, "cuda");
    const std::string straight = "train --config '" + cfg + "' --out '" + dir + "/straight'";
    const std::string killed = "train --config '" + cfg + "' --out '" + dir + "/killed'";
    REQUIRE(run_hpt(straight, env) == 0);
    const auto expected = losses(dir + "/straight/metrics.jsonl");
    REQUIRE(expected.size() == 20);
    CHECK(run_hpt(killed, env + " HPT_DEBUG_KILL_AFTER_STEP=6") == 128 + SIGKILL);
    CHECK(read_checkpoint(dir + "/killed/a/last.safetensors").manifest.step == 4);
    CHECK(run_hpt(killed + " --resume", env) == 0);
    CHECK(losses(dir + "/killed/metrics.jsonl") == expected);
    fs::remove_all(dir);
}
