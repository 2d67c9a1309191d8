// bench_convergence: how much sooner HPT reaches a good representation of a target dataset than
// pretraining from scratch. For each budget (iterations; each budget is its own run with its own
// cosine schedule) the target stage runs from the base checkpoint (HPT: everything trains; HPT-BN:
// only BatchNorm and the head) and from random init (scratch); every result is evaluated (linear
// probe and kNN on the target's test split). Writes one JSON line per run, a plot of accuracy
// against pretraining steps (log x), and the speedup:
//   steps scratch needs to reach its best accuracy / steps HPT needs to reach that accuracy.
// With several seeds (--seeds) every run repeats per seed; the speedup is taken on the mean
// accuracy over seeds, and each seed's own speedup is listed next to it, because the small test
// sets of medical datasets make one seed's comparison hinge on a few images.
#include <cstdint>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <sstream>

#include "bench/common.h"
#include "bench/convergence_stats.h"
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


void usage() {
    std::cout << "usage: bench_convergence --target DATA --base CHECKPOINT --out DIR [options]\n"
                 "  --hpt-budgets 25,100,400        budgets of the runs from the base (HPT and HPT-BN)\n"
                 "  --scratch-budgets 100,400,1600  budgets of the runs from random init\n"
                 "  --modes hpt,hpt_bn,scratch      which kinds of run\n"
                 "  --batch N --image-size N --lr X --queue K   stage settings (default: the base's)\n"
                 "  --set key=value                 any other config value (repeatable)\n"
                 "  --seeds 0,1,2                   repeat every run per seed (default: the base's run.seed);\n"
                 "                                  the speedup is taken on the mean over seeds\n"
                 "  --resume                        keep finished runs in DIR and continue interrupted ones\n";
}

}  // namespace

int main(int argc, char** argv) {
    try {
        std::string target, base, out, modes_s = "hpt,hpt_bn,scratch";
        std::string hpt_b = "25,100,400", scratch_b = "100,400,1600", seeds_s;
        int64_t batch = 0, image_size = -1, queue = 0;
        double lr = 0;
        bool resume = false;
        std::vector<std::string> sets;
        for (int i = 1; i < argc; ++i) {
            const std::string a = argv[i];
            auto next = [&]() -> std::string {
                if (i + 1 >= argc) throw Error(a + " needs a value");
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
            else if (a == "--seeds") seeds_s = next();
            else if (a == "--threads") set_num_threads(std::stoi(next()));
            else if (a == "--resume") resume = true;
            else if (a == "--help" || a == "-h") return usage(), 0;
            else throw Error("unknown option '" + a + "' (see --help)");
        }
        HPT_CHECK(!target.empty() && !base.empty() && !out.empty(), "--target, --base and --out are required (see --help)");
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
        std::vector<uint64_t> seeds;
        for (int64_t v : seeds_s.empty() ? std::vector<int64_t>{int64_t(tmpl.run.seed)} : parse_list(seeds_s)) {
            HPT_CHECK(v >= 0, "--seeds takes non-negative integers, not ", v);
            seeds.push_back(uint64_t(v));
        }
        const bool multi_seed = seeds.size() > 1;

        fs::create_directories(out);
        Output jsonl(out + "/convergence.jsonl");
        std::vector<Point> points;
        for (const uint64_t seed : seeds)
        for (const std::string& mode : modes) {
            for (int64_t budget : parse_list(mode == "scratch" ? scratch_b : hpt_b)) {
                RunConfig c = tmpl;
                c.run.seed = seed;
                c.stages = {st};
                StageConfig& s = c.stages[0];
                s.iterations = budget;
                s.init = mode == "scratch" ? "random" : base;
                s.trainable = mode == "hpt_bn" ? "bn" : "all";
                c.run.name = mode + "-" + std::to_string(budget) + (multi_seed ? "-seed" + std::to_string(seed) : "");
                c.run.out = out + "/runs/" + c.run.name;
                for (const std::string& kv : sets) apply_override(c, kv);
                HPT_CHECK(c.run.seed == seed || !multi_seed, "--set run.seed conflicts with --seeds; give the seeds to --seeds");
                // --resume keeps finished runs and continues interrupted ones from their checkpoints
                // (an interrupted 1600-step run started over).
                const bool started = resume && fs::exists(c.run.out + "/metrics.jsonl");
                if (!started && fs::exists(c.run.out)) fs::remove_all(c.run.out);
                std::cerr << "bench_convergence: " << c.run.name << "\n";
                const RunResult r = run_pipeline(c, started);
                const StageOutcome& o = r.stages[0];
                const EvalResult& e = o.evals.at(0).result;
                points.push_back({mode, budget, e.probe_test_acc, e.knn_test_acc, o.seconds, c.run.seed});
                JsonLine j;
                j.str("bench", "convergence").str("target", target).str("base", base).str("mode", mode);
                const auto acc = [](double v) { return v < 0 ? NAN : v; };  // not measured: null, as in metrics.jsonl
                j.integer("steps", budget).integer("seed", int64_t(c.run.seed)).num("probe_test_acc", acc(e.probe_test_acc)).num("probe_val_acc", acc(e.probe_val_acc));
                j.num("knn_test_acc", acc(e.knn_test_acc)).num("seconds", o.seconds).str("device", r.device);
                j.integer("batch", s.batch).integer("image_size", s.image_size).str("model", "resnet" +
                          std::to_string(c.model.depth) + " width " + std::to_string(c.model.width));
                j.str("git", git_sha()).str("time", timestamp_utc());
                jsonl.emit(j.line());
            }
        }

        // Speedup on the linear-probe accuracy: of the mean over seeds, then of each seed alone.
        std::vector<Point> sd;
        const std::vector<Point> mean = mean_over_seeds(points, &sd);
        std::ostringstream summary;
        summary.precision(4);
        if (multi_seed) {
            summary << "test accuracy over " << seeds.size() << " seeds, % (mean +- sample sd):\n"
                    << "  mode       steps  linear probe    kNN\n";
            for (size_t i = 0; i < mean.size(); ++i) {
                char row[128];
                std::snprintf(row, sizeof row, "  %-9s %6lld  %6.2f +- %4.2f  %6.2f +- %4.2f\n", mean[i].mode.c_str(),
                              static_cast<long long>(mean[i].steps), 100 * mean[i].probe, 100 * sd[i].probe, 100 * mean[i].knn,
                              100 * sd[i].knn);
                summary << row;
            }
        }
        for (const std::string mode : {"hpt", "hpt_bn"}) {
            const Speedup sp = speedup_of(mean, mode);
            if (sp.scratch_best < 0 || sp.mode_best < 0) continue;
            JsonLine j;
            j.str("bench", "convergence_speedup").str("target", target).str("mode", mode).integer("seeds", int64_t(seeds.size()));
            j.num("scratch_best_probe_acc", sp.scratch_best).integer("scratch_steps", sp.scratch_steps).num(mode + "_best_probe_acc", sp.mode_best);
            const std::string of = multi_seed ? "mean " : "";
            if (sp.need > 0) {
                const double x = double(sp.scratch_steps) / double(sp.need);
                const double margin = 100 * sp.margin;  // points
                j.integer(mode + "_steps_to_scratch_best", sp.need).num("speedup", x).raw("capped", sp.capped ? "true" : "false");
                j.num("margin_points", margin).integer("base_steps", bc.manifest.step);
                summary << mode << ": reaches scratch's best " << of << "linear-probe accuracy (" << 100 * sp.scratch_best << "% at "
                        << sp.scratch_steps << " steps) after " << sp.need << " steps: " << x << "x fewer steps"
                        << (sp.capped ? " (the grid's limit: reached at its smallest budget)" : "") << ", "
                        << (margin == 0 ? std::string("a tie") : str("+", margin, " points")) << "; not counting the base's "
                        << bc.manifest.step << " pretraining steps\n";
            } else {
                j.raw("speedup", "null");
                summary << mode << ": best " << of << 100 * sp.mode_best << "% stays below scratch's best " << of << 100 * sp.scratch_best
                        << "% within these budgets (no speedup measured)\n";
            }
            if (multi_seed) {
                std::string each;
                summary << "  each seed:";
                for (const uint64_t seed : seeds) {
                    std::vector<Point> one;
                    std::copy_if(points.begin(), points.end(), std::back_inserter(one), [&](const Point& p) { return p.seed == seed; });
                    const Speedup s1 = speedup_of(one, mode);
                    const std::string x = s1.need > 0 ? str(double(s1.scratch_steps) / double(s1.need), "x") : std::string("-");
                    summary << " " << seed << ": " << x;
                    each += (each.empty() ? "" : ",") + (s1.need > 0 ? str(double(s1.scratch_steps) / double(s1.need)) : std::string("null"));
                }
                summary << "\n";
                j.raw("speedup_per_seed", "[" + each + "]");
            }
            j.str("git", git_sha());
            jsonl.emit(j.line());
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
