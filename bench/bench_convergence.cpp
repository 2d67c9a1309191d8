// bench_convergence: how much sooner HPT reaches a good representation of a target dataset than
// pretraining from scratch. For each budget (iterations; each budget is its own run with its own
// cosine schedule) the target stage runs from the base checkpoint (HPT: everything trains; HPT-BN:
// only BatchNorm and the head) and from random init (scratch); every result is evaluated (linear
// probe and kNN on the target's test split). Writes one JSON line per run, a plot of accuracy
// against pretraining steps (log x), and the speedup:
//   steps scratch needs to reach its best accuracy / steps HPT needs to reach that accuracy.
#include <cstdint>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "bench/common.h"
#include "engine/io/atomic_file.h"
#include "hpt/checkpoint.h"
#include "hpt/pipeline.h"
#include "kernels/cpu/parallel.h"

using namespace hpt;
using namespace hpt::pipeline;
using namespace hpt::bench;
namespace fs = std::filesystem;

namespace {

std::vector<int64_t> parse_list(const std::string& s) {
    std::vector<int64_t> v;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) v.push_back(std::stoll(item));
    HPT_CHECK(!v.empty(), "empty budget list '", s, "'");
    std::sort(v.begin(), v.end());
    return v;
}

struct Point {
    std::string mode;
    int64_t steps;
    double probe, knn, seconds;
};

void usage() {
    std::cout << "usage: bench_convergence --target DATA --base CHECKPOINT --out DIR [options]\n"
                 "  --hpt-budgets 25,100,400        budgets of the runs from the base (HPT and HPT-BN)\n"
                 "  --scratch-budgets 100,400,1600  budgets of the runs from random init\n"
                 "  --modes hpt,hpt_bn,scratch      which kinds of run\n"
                 "  --batch N --image-size N --lr X --queue K   stage settings (default: the base's)\n"
                 "  --set key=value                 any other config value (repeatable)\n"
                 "  --resume                        keep finished runs in DIR\n";
}

}  // namespace

int main(int argc, char** argv) {
    try {
        std::string target, base, out, modes_s = "hpt,hpt_bn,scratch";
        std::string hpt_b = "25,100,400", scratch_b = "100,400,1600";
        int64_t batch = 0, image_size = -1, queue = 0;
        double lr = 0;
        bool resume = false;
        std::vector<std::string> sets;
        for (int i = 1; i < argc; ++i) {
            const std::string a = argv[i];
            auto next = [&]() -> std::string {
                if (i + 1 >= argc) throw Error("bench_convergence: " + a + " needs a value");
                return argv[++i];
            };
            if (a == "--target") target = next();
            else if (a == "--base") base = next();
            else if (a == "--out") out = next();
            else if (a == "--modes") modes_s = next();
            else if (a == "--hpt-budgets") hpt_b = next();
            else if (a == "--scratch-budgets") scratch_b = next();
            else if (a == "--batch") batch = std::stoll(next());
            else if (a == "--image-size") image_size = std::stoll(next());
            else if (a == "--queue") queue = std::stoll(next());
            else if (a == "--lr") lr = std::stod(next());
            else if (a == "--set") sets.push_back(next());
            else if (a == "--threads") set_num_threads(std::stoi(next()));
            else if (a == "--resume") resume = true;
            else if (a == "--help" || a == "-h") return usage(), 0;
            else throw Error("bench_convergence: unknown option '" + a + "' (see --help)");
        }
        HPT_CHECK(!target.empty() && !base.empty() && !out.empty(), "bench_convergence: --target, --base and --out are required (see --help)");
        const Checkpoint bc = read_checkpoint(base);
        HPT_CHECK(bc.has_manifest, base, ": bench_convergence needs an hpt checkpoint (it takes the model config from it)");
        RunConfig tmpl = from_json(bc.manifest.config);
        StageConfig st;
        for (const StageConfig& s : tmpl.stages)
            if (s.name == bc.manifest.stage) st = s;
        st.name = "target";
        st.data = target;
        st.eval_data = {target};
        if (batch) st.batch = batch;
        if (image_size >= 0) st.image_size = image_size;
        if (lr > 0) st.lr = lr;
        if (queue) tmpl.moco.queue = queue;
        tmpl.run.checkpoint_every = 0;
        std::stringstream ms(modes_s);
        std::vector<std::string> modes;
        for (std::string m; std::getline(ms, m, ',');) {
            HPT_CHECK(m == "hpt" || m == "hpt_bn" || m == "scratch", "unknown mode '", m, "' (hpt, hpt_bn, scratch)");
            modes.push_back(m);
        }

        fs::create_directories(out);
        Output jsonl(out + "/convergence.jsonl");
        std::vector<Point> points;
        for (const std::string& mode : modes) {
            for (int64_t budget : parse_list(mode == "scratch" ? scratch_b : hpt_b)) {
                RunConfig c = tmpl;
                c.stages = {st};
                StageConfig& s = c.stages[0];
                s.iterations = budget;
                s.init = mode == "scratch" ? "random" : base;
                s.trainable = mode == "hpt_bn" ? "bn" : "all";
                c.run.name = mode + "-" + std::to_string(budget);
                c.run.out = out + "/runs/" + c.run.name;
                for (const std::string& kv : sets) apply_override(c, kv);
                const bool done = resume && fs::exists(c.run.out + "/target/final.safetensors");
                if (!done && fs::exists(c.run.out)) fs::remove_all(c.run.out);
                std::cerr << "bench_convergence: " << c.run.name << "\n";
                const RunResult r = run_pipeline(c, done);
                const StageOutcome& o = r.stages[0];
                const EvalResult& e = o.evals.at(0).result;
                points.push_back({mode, budget, e.probe_test_acc, e.knn_test_acc, o.seconds});
                JsonLine j;
                j.str("bench", "convergence").str("target", target).str("base", base).str("mode", mode);
                const auto acc = [](double v) { return v < 0 ? NAN : v; };  // not measured: null, as in metrics.jsonl
                j.integer("steps", budget).num("probe_test_acc", acc(e.probe_test_acc)).num("probe_val_acc", acc(e.probe_val_acc));
                j.num("knn_test_acc", acc(e.knn_test_acc)).num("seconds", o.seconds).str("device", r.device);
                j.integer("batch", s.batch).integer("image_size", s.image_size).str("model", "resnet" +
                          std::to_string(c.model.depth) + " width " + std::to_string(c.model.width));
                j.str("git", git_sha()).str("time", timestamp_utc());
                jsonl.emit(j.line());
            }
        }

        // Speedup on the linear-probe accuracy.
        double best = -1;
        int64_t scratch_steps = 0;
        for (const Point& p : points)
            if (p.mode == "scratch" && p.probe > best) best = p.probe, scratch_steps = p.steps;
        std::ostringstream summary;
        summary.precision(4);
        if (best >= 0) {
            for (const std::string mode : {"hpt", "hpt_bn"}) {
                int64_t need = -1;
                double mode_best = -1;
                for (const Point& p : points) {
                    if (p.mode != mode) continue;
                    mode_best = std::max(mode_best, p.probe);
                    if (p.probe >= best && need < 0) need = p.steps;
                }
                if (mode_best < 0) continue;
                JsonLine j;
                j.str("bench", "convergence_speedup").str("target", target).str("mode", mode);
                j.num("scratch_best_probe_acc", best).integer("scratch_steps", scratch_steps).num(mode + "_best_probe_acc", mode_best);
                if (need > 0) {
                    j.integer(mode + "_steps_to_scratch_best", need).num("speedup", double(scratch_steps) / double(need));
                    summary << mode << ": reaches scratch's best linear-probe accuracy (" << 100 * best << "% at "
                            << scratch_steps << " steps) after " << need << " steps: " << double(scratch_steps) / double(need)
                            << "x fewer steps\n";
                } else {
                    j.raw("speedup", "null");
                    summary << mode << ": best " << 100 * mode_best << "% stays below scratch's best " << 100 * best
                            << "% within these budgets (no speedup measured)\n";
                }
                j.str("git", git_sha());
                jsonl.emit(j.line());
            }
        }
        std::cout << summary.str();
        io::write_file_atomic(out + "/speedup.txt", summary.str());
        // The plot, through Debian's python3-matplotlib.
        std::string err;
        run_peer(source_dir() + "/tools/plot_convergence.py", {out + "/convergence.jsonl", out + "/convergence.png"}, "", err);
        if (!err.empty()) std::cerr << "warning: no plot: " << err << "\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "bench_convergence: " << e.what() << "\n";
        return 1;
    }
}
