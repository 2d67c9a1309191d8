// hpt_run: Hierarchical PreTraining from the command line.
//   hpt_run                          the built-in example (Fashion-MNIST base -> digits; HPT vs scratch)
//   hpt_run train --config FILE      the stages of a TOML config
//   hpt_run eval --checkpoint C --data D
//   hpt_run embed --checkpoint C --data D --out features.npy
//   hpt_run data inspect PATH | data preview PATH --out grid.png
#include <cstdint>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <csignal>
#include <limits>
#include <set>
#include <cstdio>
#include <iostream>

#include "engine/core/error.h"
#include "engine/data/inspect.h"
#include "engine/dist/comm.h"
#include "engine/io/atomic_file.h"
#include "ssl/preview.h"
#include "hpt/embed.h"
#include "hpt/example.h"
#include "hpt/interrupt.h"
#include "hpt/pipeline.h"
#include "kernels/cpu/parallel.h"

using namespace hpt;
using namespace hpt::pipeline;

namespace {

// A number in [lo, hi], or (lo, hi] when !lo_inclusive, with a message that says so (CLI11's own
// range checks print DBL_MAX in full).
CLI::Validator number_in(double lo, bool lo_inclusive, double hi) {
    const std::string range =
        (lo_inclusive ? "[" : "(") + CLI::detail::to_string(lo) + ", " + CLI::detail::to_string(hi) + "]";
    return CLI::Validator(
        [=](std::string& s) -> std::string {
            double v = 0;
            try {
                v = std::stod(s);
            } catch (const std::exception&) {
                return "expected a number, got '" + s + "'";
            }
            if ((lo_inclusive ? v >= lo : v > lo) && v <= hi) return "";
            return "must be in " + range + ", got " + s;
        },
        "NUMBER in " + range);
}

// A square image side, 0 meaning the default: --image-size, --size and --load-size.
CLI::Validator image_side() { return number_in(0, true, double(data::kMaxImageSide)); }

// An integer in [lo, hi], parsed as one: a double bound refused seeds near 2^63 with a message that
// printed the bound rounded, and 2.7 passed a number check to fail later, blamed on --set.
CLI::Validator integer_in(long long lo, long long hi) {
    const std::string range = "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    return CLI::Validator(
        [=](std::string& s) -> std::string {
            long long v = 0;
            size_t used = 0;
            try {
                v = std::stoll(s, &used);
            } catch (const std::exception&) {
                return "expected an integer in " + range + ", got '" + s + "'";
            }
            if (used != s.size()) return "expected an integer in " + range + ", got '" + s + "'";
            if (v >= lo && v <= hi) return "";
            return "must be in " + range + ", got " + s;
        },
        "INTEGER in " + range);
}

// A seed as the config holds it (TOML integers are int64); CLI11 alone turned -1 into 2^64 - 1.
CLI::Validator seed_range() { return integer_in(0, std::numeric_limits<long long>::max()); }

// Every subcommand takes --threads as well, so that it works on either side of the subcommand.
void add_threads(CLI::App* cmd, int& threads) {
    cmd->add_option("--threads", threads, "CPU threads (default: all cores, or HPT_NUM_THREADS)")
        ->check(number_in(0, true, 4096));
}

void add_load_size(CLI::App* cmd, int64_t& size, const char* zero = "keep") {
    cmd->add_option("--load-size", size, std::string("resize image files on load to this square size (0: ") + zero + ")")
        ->check(image_side());
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"hpt_run " HPT_VERSION
                 ": Hierarchical PreTraining (MoCo v2, stage after stage) on your images.\n"
                 "Without a subcommand it runs the built-in example."};
    app.set_version_flag("--version", "hpt_run " HPT_VERSION);
    std::string device = "auto";
    int threads = 0;
    app.add_option("--device", device, "cpu, cuda, cuda:N or auto (the first GPU if any)")->capture_default_str();
    add_threads(&app, threads);

    ExampleOptions ex;
    // The example's own options: given before a subcommand they would be silently ignored.
    const std::vector<CLI::Option*> example_only{
        app.add_option("--out", ex.out, "output folder of the built-in example")->capture_default_str(),
        app.add_option("--seed", ex.seed, "seed of the built-in example")->capture_default_str()->check(seed_range()),
        app.add_flag("--resume", ex.resume, "continue an interrupted built-in example"),
        app.add_option("--budget", ex.budget, "scale every iteration count of the example (e.g. 0.1 for a quick look)")
            ->capture_default_str()
            ->check(number_in(0, false, 1000))};

    auto* train = app.add_subcommand("train", "run the stages of a TOML config");
    std::string config;
    std::vector<std::string> sets;
    std::string out;
    uint64_t seed = 0;
    bool seed_given = false, resume = false;
    train->add_option("--config", config, "the TOML file ([run] [model] [moco] [augment] [eval] [dist] [[stage]])")
        ->required()
        ->check(CLI::ExistingFile);
    train->add_option("--set", sets,
                      "override a config value: key=value (repeatable), e.g. stage.target.iterations=500; the named "
                      "options below win over it");
    train->add_option("--out", out, "output folder (run.out)");
    train->add_option("--seed", seed, "seed (run.seed)")
        ->check(seed_range())
        ->each([&](const std::string&) { seed_given = true; });
    train->add_flag("--resume", resume, "continue the run in --out from its last checkpoints");
    CLI::Option* train_device = train->add_option("--device", device, "cpu, cuda, cuda:N or auto (run.device)");
    bool print_config = false;
    train->add_flag("--print-config", print_config,
                    "print the run's config, every key with its value (defaults and --set included), and stop");
    bool strict = false;
    train->add_flag("--strict", strict, "an unreadable image stops the run (run.strict_data; default: skipped and counted)");
    add_threads(train, threads);

    auto* eval = app.add_subcommand("eval", "linear probe and kNN of a checkpoint's backbone on a labeled dataset");
    BackboneRequest er;
    std::string er_format = "auto";
    // eval.<key>=<value> over the checkpoint's run's [eval]: --set's, then the named options'. Two
    // lists, since CLI11 assigns --set's values to its vector after every option's callback has run,
    // which dropped what the named options had added to a shared one.
    std::vector<std::string> eval_sets, eval_named;
    std::set<std::string> eval_parts_on;  // linear_probe, knn: a named option of theirs was given
    eval->add_option("--checkpoint", er.checkpoint, "hpt checkpoint or torchvision-style safetensors")->required();
    eval->add_option("--data", er.data, "labeled dataset (train/val/test splits; test and val are carved from train if absent)")->required();
    eval->add_option("--image-size", er.image_size, "input size (default: the checkpoint's training size)")
        ->check(image_side());
    // Unset, each comes from the run that wrote the checkpoint (its config's [eval]), else the default.
    // A probe or kNN setting also turns its part on (unless --set turns it off): given to a run
    // whose [eval] had it off, it was shown in the settings line but never used.
    const auto eval_key = [&](const char* option, const char* key, const char* help, CLI::Validator range,
                              const char* turns_on) {
        eval->add_option_function<std::string>(
                option,
                [&eval_named, &eval_parts_on, key, turns_on](const std::string& v) {
                    if (turns_on) eval_parts_on.insert(turns_on);
                    eval_named.push_back(std::string("eval.") + key + "=" + v);
                },
                std::string(help) + " (eval." + key + "; default: the checkpoint's run's" +
                    (turns_on ? std::string("; turns eval.") + turns_on + " on" : std::string()) + ")")
            ->check(range);
    };
    eval_key("--probe-epochs", "probe_epochs", "epochs of the linear probe", integer_in(1, 1000000), "linear_probe");
    eval_key("--probe-lr", "probe_lr", "learning rate of the linear probe", number_in(0, false, 1e6), "linear_probe");
    eval_key("--knn-k", "knn_k", "neighbours of the kNN vote", integer_in(1, 1000000), "knn");
    eval_key("--knn-t", "knn_t", "temperature of the kNN vote's weights", number_in(0, false, 1e6), "knn");
    eval_key("--max-train", "max_train", "training images used, a seeded subset (0: all)", integer_in(0, 1000000000000),
             nullptr);
    eval->add_option("--set", eval_sets, "any [eval] value: eval.<key>=<value> (repeatable; the options above win)");
    eval->add_option("--device", device, "cpu, cuda, cuda:N or auto");
    eval->add_option("--format", er_format, "force the dataset format: idx, npz, digits_csv, image_folder, list_file")
        ->capture_default_str();
    eval->add_flag("--strict", er.load.strict, "an unreadable image is an error (default: skipped and counted)");
    add_load_size(eval, er.load.image_size, "the run's run.load_size");
    add_threads(eval, threads);

    auto* emb = app.add_subcommand("embed", "write a dataset's pooled backbone features as .npy");
    BackboneRequest br;
    std::string emb_out;
    emb->add_option("--checkpoint", br.checkpoint, "hpt checkpoint or torchvision-style safetensors")->required();
    emb->add_option("--data", br.data, "dataset")->required();
    emb->add_option("--out", emb_out, "features.npy (float32 [N, C]); labels (int64 [N], -1: unlabeled) go to <out>.labels.npy")->required();
    emb->add_option("--split", br.split, "train, val, test or all (in that order)")->capture_default_str();
    emb->add_option("--image-size", br.image_size, "input size (default: the checkpoint's training size)")
        ->check(image_side());
    emb->add_option("--mean", br.mean, "per-channel mean in [0,1] (default: the dataset's)");
    emb->add_option("--std", br.std, "per-channel std in [0,1] (default: the dataset's)");
    emb->add_option("--device", device, "cpu, cuda, cuda:N or auto");
    emb->add_option("--format", er_format, "force the dataset format: idx, npz, digits_csv, image_folder, list_file")
        ->capture_default_str();
    emb->add_flag("--strict", br.load.strict, "an unreadable image is an error (default: skipped and counted)");
    add_load_size(emb, br.load.image_size, "the run's run.load_size");
    add_threads(emb, threads);


    auto* data_cmd = app.add_subcommand("data", "look at a dataset before training on it");
    data_cmd->require_subcommand(1);
    auto* inspect = data_cmd->add_subcommand("inspect", "detected format, splits, image shape, class counts, mean/std");
    std::string data_path, data_format = "auto", preview_out, policy = "full";
    int64_t preview_n = 8, preview_size = 0;
    uint64_t preview_seed = 0;
    inspect->add_option("path", data_path, "dataset: IDX folder/files, .npz, digits .csv.gz, image folder or list file")
        ->required();
    inspect->add_option("--format", data_format, "force the format: idx, npz, digits_csv, image_folder, list_file")
        ->capture_default_str();
    bool data_strict = false;
    int64_t data_load_size = 0;
    inspect->add_flag("--strict", data_strict, "an unreadable image is an error (default: skipped and counted)");
    uint64_t inspect_seed = 0;
    inspect->add_option("--seed", inspect_seed, "the run's run.seed, which chooses the val carve (test is the same for every seed)")
        ->capture_default_str()
        ->check(seed_range());
    add_load_size(inspect, data_load_size);
    add_threads(inspect, threads);
    auto* preview = data_cmd->add_subcommand("preview", "a PNG grid of images and their two augmented views");
    preview->add_option("path", data_path, "dataset")->required();
    preview->add_option("--out", preview_out, "the PNG to write")->required();
    preview->add_option("-n,--images", preview_n, "rows of the grid")->capture_default_str();
    preview->add_option("--policy", policy, "full, no_gray, no_color, crop_blur or crop_only")->capture_default_str();
    preview->add_option("--size", preview_size, "view size (default: the images' size)")->check(image_side());
    preview->add_option("--seed", preview_seed, "seed of the views drawn")->capture_default_str()->check(seed_range());
    preview->add_option("--format", data_format, "force the dataset format")->capture_default_str();
    preview->add_flag("--strict", data_strict, "an unreadable image is an error (default: skipped and counted)");
    add_load_size(preview, data_load_size);
    add_threads(preview, threads);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    if (!app.get_subcommands().empty())
        for (const CLI::Option* o : example_only)
            if (o->count()) {
                const std::string sub = app.get_subcommands()[0]->get_name();
                std::fprintf(stderr, "hpt_run: error: %s before '%s' is an option of the built-in example; the options "
                             "of '%s' go after it (hpt_run %s --help)\n", o->get_name().c_str(), sub.c_str(),
                             sub.c_str(), sub.c_str());
                return 2;
            }
    if (*data_cmd && app.get_option("--device")->count()) {  // it was ignored, even when misspelled
        std::fprintf(stderr, "hpt_run: error: --device has no effect on 'data' (it reads and augments on the CPU)\n");
        return 2;
    }
    try {
        if (threads > 0) set_num_threads(threads);
        if (*train) {
            RunConfig cfg = load_config(config);
            // --set first, then the named options, which win as they do for eval (--set used to
            // override --out and --seed silently). An empty --out is validate()'s to refuse.
            for (const std::string& s : sets) apply_override(cfg, s);
            if (train->get_option("--out")->count()) cfg.run.out = out;
            if (seed_given) cfg.run.seed = seed;
            // Given, even as "auto", --device overrides run.device; before a subcommand too.
            if (train_device->count() || app.get_option("--device")->count()) cfg.run.device = device;
            if (strict) cfg.run.strict_data = true;
            if (print_config) {
                validate(cfg);
                std::printf("%s", to_toml(cfg).c_str());
                return 0;
            }
            const RunResult r = run_pipeline(cfg, resume);
            if (r.rank == 0) std::printf("\n%s", summary_table(r).c_str());
            return 0;
        }
        if (er_format != "auto") er.load.format = br.load.format = data::parse_format(er_format);
        if (*eval) {
            er.device = device;
            for (const std::string& part : eval_parts_on) {
                const std::string key = "eval." + part + "=";
                if (std::none_of(eval_sets.begin(), eval_sets.end(), [&](const std::string& x) { return x.rfind(key, 0) == 0; }))
                    eval_sets.push_back(key + "true");
            }
            eval_sets.insert(eval_sets.end(), eval_named.begin(), eval_named.end());
            const CheckpointEval ce = evaluate_checkpoint(er, eval_sets);
            const EvalResult& r = ce.result;
            const EvalSection& e = ce.settings;
            // A part turned off says so (it printed as -100.00%).
            const std::string probe = r.probe_test_acc < 0 ? "not run"
                                                             : percent(r.probe_test_acc) + " (test, at the best validation accuracy " +
                                                                   percent(r.probe_val_acc) + ")";
            const std::string knn = percent(r.knn_test_acc, "not run");
            std::printf("%s on %s: linear probe %s, kNN %s\n", er.checkpoint.c_str(), er.data.c_str(), probe.c_str(),
                        knn.c_str());
            // Only the settings of the parts that ran (a probe setting beside "not run" read as used).
            std::string settings;
            if (e.linear_probe)
                settings += str("probe_epochs ", e.probe_epochs, ", probe_lr ", e.probe_lr, ", probe_weight_decay ",
                                e.probe_weight_decay, ", ");
            if (e.knn)
                settings += str("knn_k ", e.knn_k,
                                r.knn_k_used < e.knn_k ? str(" (", r.knn_k_used, " used: every training image votes)") : "",
                                ", knn_t ", e.knn_t, ", ");
            const std::string size = ce.image_size == 0 ? std::string("their own size (--image-size sets one)")
                                     : str(ce.image_size, "x", ce.image_size, er.image_size ? " (--image-size)"
                                                                                  : " (the checkpoint's training size; --image-size sets it)");
            std::printf("settings (%s): %smax_train %lld; images at %s\n",
                        ce.settings_from_run ? "the checkpoint's run's [eval] and your options" : "defaults and your options",
                        settings.c_str(), static_cast<long long>(e.max_train), size.c_str());
            return 0;
        }
        if (*emb) {
            br.device = device;
            const Embedding e = embed(br);
            write_npy(emb_out, e.features);
            write_npy(emb_out + ".labels.npy", e.labels.to(DType::i64).reshape({-1}));  // int64 [N]; -1: unlabeled
            std::printf("wrote %s: %lld x %lld features (and their labels to %s.labels.npy)\n", emb_out.c_str(),
                        static_cast<long long>(e.features.size(0)), static_cast<long long>(e.features.size(1)),
                        emb_out.c_str());
            // Rows come split by split (a carve in each), and labels number the sorted class names:
            // without these a row could not be traced to its file, nor folder "10" to label 2.
            const auto write_lines = [&](const std::string& path, const std::vector<std::string>& lines, const char* what) {
                if (lines.empty()) return;
                std::string text;
                for (const std::string& l : lines) text += l + "\n";
                io::write_file_atomic(path, text);
                std::printf("wrote %s: %s\n", path.c_str(), what);
            };
            write_lines(emb_out + ".names.txt", e.names, "each row's image file, relative to the dataset");
            write_lines(emb_out + ".classes.txt", e.classes, "the class name of label 0, 1, ... (one per line)");
            return 0;
        }
        if (*data_cmd) {
            data::LoadOptions lo;
            if (data_format != "auto") lo.format = data::parse_format(data_format);
            lo.strict = data_strict;
            lo.image_size = data_load_size;
            if (*inspect) {
                lo.seed = inspect_seed;
                std::printf("%s", data::inspect_report(data_path, lo).c_str());
                return 0;
            }
            const data::Dataset ds = data::load_dataset(data_path, lo);
            const data::ImageSet& set = ds.train.size() ? ds.train : ds.test;
            // The grid normalises with the training split's own statistics (ssl/preview.h).
            const ssl::AugmentConfig cfg =
                ssl::augment_policy(policy, int32_t(preview_size ? preview_size : set.images.size(1)));
            const int64_t rows = ssl::write_preview_grid(ds, preview_out, preview_n, cfg, preview_seed);
            std::printf("wrote %s: %lld images (left) and two %s views of each\n", preview_out.c_str(),
                        static_cast<long long>(rows), policy.c_str());
            return 0;
        }
        ex.device = device;
        return run_example(ex);
    } catch (const pipeline::Interrupted& e) {  // asked to stop: every rank saved or agreed, no abort
        std::fprintf(stderr, "hpt_run: %s\n", e.what());
        // Dying of the signal, as an interrupted command does, stops a shell loop of runs.
        std::fflush(stdout);
        std::signal(e.signal, SIG_DFL);
        std::raise(e.signal);
        return 128 + e.signal;
    } catch (const std::exception& e) {
        const dist::LaunchInfo l = dist::detect_launch();
        if (l.world > 1) {
            // The other ranks may wait for this one without a time limit (while it evaluates, say):
            // an error on one rank ends the whole job instead of leaving them blocked.
            std::fprintf(stderr, "hpt_run: error on rank %d of %d: %s\nhpt_run: aborting all ranks\n", l.rank, l.world,
                         e.what());
            std::fflush(stderr);
            dist::abort_job(1);
        }
        std::fprintf(stderr, "hpt_run: error: %s\n", e.what());
        return 1;
    }
}
