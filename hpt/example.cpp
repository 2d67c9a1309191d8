#include "hpt/example.h"

#include "hpt/interrupt.h"

#include <cstdint>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <vector>

#include "hpt/pipeline.h"

namespace hpt::pipeline {

namespace fs = std::filesystem;

std::string debian_fashion_mnist() {
    const std::string d = "/usr/share/datasets/fashion-mnist";
    HPT_CHECK(fs::exists(d + "/train-images-idx3-ubyte.gz"), "Fashion-MNIST not found in ", d,
              ": install Debian's dataset-fashion-mnist (tools/install-deps)");
    return d;
}

std::string sklearn_digits() {
    // Debian's python3-sklearn first; then a pip-installed scikit-learn of any Python 3.
    std::vector<fs::path> dirs = {"/usr/lib/python3/dist-packages", "/usr/local/lib/python3/dist-packages"};
    for (const char* lib : {"/usr/local/lib", "/usr/lib"}) {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(lib, ec)) {
            if (e.path().filename().string().rfind("python3.", 0) != 0) continue;
            for (const char* sub : {"dist-packages", "site-packages"}) dirs.push_back(e.path() / sub);
        }
    }
    for (const fs::path& d : dirs) {
        const fs::path p = d / "sklearn/datasets/data/digits.csv.gz";
        if (fs::exists(p)) return p.string();
    }
    HPT_THROW("scikit-learn's digits (sklearn/datasets/data/digits.csv.gz) not found: install Debian's python3-sklearn "
              "(tools/install-deps)");
}

namespace {

RunConfig base_config(const ExampleOptions& o) {
    RunConfig c;
    c.run.seed = o.seed;
    c.run.device = o.device;
    c.run.checkpoint_every = 100;
    c.run.log_every = 10;
    // A quarter-width ResNet-18 with the small-image stem on 16x16 images: small enough for a
    // 2-core CPU to run the whole example in minutes.
    c.model.depth = 18;
    c.model.small_stem = true;
    c.model.width = 0.25;
    c.model.proj_dim = 64;
    c.moco.queue = 4096;
    // 0.99 rather than MoCo's 0.999: with a few hundred steps per stage a key encoder with a time
    // constant of 1000 steps would barely leave its initialisation.
    c.moco.momentum = 0.99;
    c.moco.bn_groups = 2;
    c.eval.max_train = 10000;
    c.eval.probe_epochs = 60;
    // The digits have ~130 training images per class: with the default k = 200 most of a test
    // image's neighbours would come from other classes whatever the features.
    c.eval.knn_k = 20;
    return c;
}

int64_t scaled(int64_t iters, double budget) { return std::max<int64_t>(2, int64_t(std::lround(double(iters) * budget))); }

StageConfig stage(const std::string& name, const std::string& data, const std::string& init, int64_t iters) {
    StageConfig s;
    s.name = name;
    s.data = data;
    s.init = init;
    s.iterations = iters;
    s.batch = 128;
    s.lr = 0.06;
    s.image_size = 16;
    return s;
}

}  // namespace

int run_example(const ExampleOptions& o) {
    // "" would put the two runs at /hpt and /scratch.
    HPT_CHECK(!o.out.empty(), "--out is empty: name the folder the example writes to");
    // Running the README's first command again stopped with "already holds a run": the example
    // continues its earlier run instead (a finished one just prints its table again).
    bool resume = o.resume;
    if (!resume && (std::filesystem::exists(o.out + "/hpt/metrics.jsonl") ||
                    std::filesystem::exists(o.out + "/scratch/metrics.jsonl"))) {
        resume = true;
        std::cerr << "hpt example: " << o.out << " holds an earlier example run: continuing it (finished stages are "
                  << "reused; delete the folder or give another --out to start over)\n";
    }
    const std::string fmnist = debian_fashion_mnist(), digits = sklearn_digits();
    const int64_t base_iters = scaled(600, o.budget), target_iters = scaled(300, o.budget);
    std::cerr << "hpt example: MoCo v2 base on Fashion-MNIST (" << base_iters
              << " steps), then the digits target stage from that base (HPT) and from random init (scratch), "
              << target_iters << " steps each. Checkpoints and metrics go to " << o.out << "\n";

    RunConfig hpt = base_config(o);
    hpt.run.name = "example-hpt";
    hpt.run.out = o.out + "/hpt";
    StageConfig base = stage("base", fmnist, "random", base_iters);
    base.eval_data = {digits};  // how well does the generic base alone represent digits?
    hpt.stages = {base, stage("target", digits, "previous", target_iters)};
    RunConfig scratch = base_config(o);
    scratch.run.name = "example-scratch";
    scratch.run.out = o.out + "/scratch";
    scratch.stages = {stage("target", digits, "random", target_iters)};

    const InterruptScope interrupts;  // one for both runs: a Ctrl-C in the first run's last evaluation stops here
    const RunResult a = run_pipeline(hpt, resume);
    stop_if_interrupted("stopped before the scratch run");
    const RunResult b = run_pipeline(scratch, resume);
    const EvalResult& rb = a.stages[0].evals.at(0).result;
    const EvalResult& rh = a.stages[1].evals.at(0).result;
    const EvalResult& rs = b.stages[0].evals.at(0).result;

    std::printf("\nHPT example on %s: target = scikit-learn digits (8x8, 10 classes), evaluated on its test split\n",
                a.device.c_str());
    std::printf("%-34s %20s %14s %10s\n", "backbone", "steps on digits", "linear probe", "kNN");
    auto row = [](const char* name, int64_t steps, const EvalResult& r) {
        std::printf("%-34s %20lld %13.1f%% %9.1f%%\n", name, static_cast<long long>(steps), 100 * r.probe_test_acc,
                    100 * r.knn_test_acc);
    };
    row("base (MoCo on Fashion-MNIST)", 0, rb);
    // The steps that ran: a resume under another --budget keeps finished stages as they were.
    const int64_t hpt_steps = a.stages[1].iterations, scratch_steps = b.stages[0].iterations;
    row("HPT (base -> digits)", hpt_steps, rh);
    row("scratch (random init -> digits)", scratch_steps, rs);
    const double gain = 100 * (rh.probe_test_acc - rs.probe_test_acc);
    if (hpt_steps == scratch_steps)
        std::printf("\nWith the same %lld target steps, HPT is %.1f points of linear-probe accuracy %s scratch.\n",
                    static_cast<long long>(hpt_steps), std::fabs(gain), gain >= 0 ? "above" : "below");
    else
        std::printf("\nHPT (%lld target steps) is %.1f points of linear-probe accuracy %s scratch (%lld steps).\n",
                    static_cast<long long>(hpt_steps), std::fabs(gain), gain >= 0 ? "above" : "below",
                    static_cast<long long>(scratch_steps));
    std::printf("Details: %s/{hpt,scratch}/summary.txt and metrics.jsonl\n", o.out.c_str());
    return 0;
}

}  // namespace hpt::pipeline
