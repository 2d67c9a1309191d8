#include "hpt/stage.h"

#include <cstdint>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <tuple>

#include "engine/autograd/grad_mode.h"
#include "engine/data/loader.h"
#include "engine/dist/reducer.h"
#include "engine/io/atomic_file.h"
#include "engine/io/sha256.h"
#include "engine/ops/ops.h"
#include "engine/optim/schedule.h"
#include "hpt/checkpoint.h"
#include "hpt/interrupt.h"
#include "hpt/pipeline.h"
#include "hpt/progress.h"
#include "ssl/augment.h"

namespace hpt::pipeline {

namespace fs = std::filesystem;

namespace {

const data::Dataset& dataset(const std::string& path, const RunConfig& cfg) {
    static std::mutex mu;
    static std::map<std::tuple<std::string, uint64_t, bool, int64_t>, data::Dataset> cache;
    std::lock_guard<std::mutex> lock(mu);
    auto key = std::make_tuple(path, cfg.run.seed, cfg.run.strict_data, cfg.run.load_size);
    auto it = cache.find(key);
    if (it == cache.end()) {
        data::LoadOptions o;
        o.seed = cfg.run.seed;
        o.strict = cfg.run.strict_data;
        o.image_size = cfg.run.load_size;
        it = cache.emplace(key, data::load_dataset(path, o)).first;
    }
    return it->second;
}

// The images a stage pretrains on: train + val, never test.
Tensor pretraining_images(const data::Dataset& ds) {
    if (ds.val.size() == 0) return ds.train.images;
    if (ds.train.size() == 0) return ds.val.images;
    return cat({ds.train.images, ds.val.images}, 0);
}

data::ImageSet pretraining_set(const Tensor& images) {
    data::ImageSet s;
    s.images = images;
    return s;
}

// The loader of a stage's training steps. Global batch `within` of `epoch` is a slice of the
// epoch's permutation (a function of (seed, epoch)); this rank's queries are its rows
// [rank*local, (rank+1)*local), its keys the same rows of the batch shuffled by the step's key
// permutation (shuffle BN: other images, which the rank loads itself instead of receiving them).
// On the CPU the batch is made when asked for (a worker would compete with the step's threads
// for the cores, and augmenting costs ~0.2% of a step); on a GPU a worker prepares two batches
// ahead and copies them from pinned memory while the step computes.
data::LoaderConfig step_loader_config(const StageConfig& st, const ssl::AugmentConfig& aug,
                                      const std::vector<double>& mean, const std::vector<double>& std, Device device,
                                      uint64_t seed, int64_t n, int64_t rank, int64_t world) {
    const int64_t local = st.batch / world, batch = st.batch, spe = n / st.batch;  // drop_last
    data::LoaderConfig lc;
    lc.mode = data::LoaderMode::augment;
    lc.batch_size = local;
    lc.seed = seed;
    lc.device = device;
    lc.mean = mean;
    lc.std = std;
    lc.augment = aug;
    lc.prefetch = device.is_cpu() ? 0 : 2;
    lc.plan_batches = spe;
    struct Order {
        int64_t epoch = -1;
        std::vector<int64_t> perm;
    };
    auto order = std::make_shared<Order>();  // the planner is called by one thread at a time
    lc.plan = [order, n, spe, batch, local, rank, seed](int64_t epoch, int64_t within) {
        if (order->epoch != epoch) {
            Generator eg(seed, 0x45504f4348ull);  // "EPOCH"
            eg.set_position(uint64_t(epoch) * uint64_t(n));
            order->perm = eg.permutation(n);
            order->epoch = epoch;
        }
        const auto row = order->perm.begin() + within * batch;
        const std::vector<int64_t> key_perm = ssl::Moco::shuffle_permutation(batch, seed, epoch * spe + within);
        data::BatchPlan p;
        p.view1.assign(row + rank * local, row + (rank + 1) * local);
        for (int64_t j = 0; j < local; ++j) p.view2.push_back(row[key_perm[size_t(rank * local + j)]]);
        return p;
    };
    return lc;
}

models::ResNetConfig encoder_config(const RunConfig& cfg) {
    models::ResNetConfig e;
    e.depth = cfg.model.depth;
    e.small_stem = cfg.model.small_stem;
    e.width = cfg.model.width;
    e.in_channels = model_channels(cfg);
    e.head = models::Head::mlp;
    e.proj_dim = cfg.model.proj_dim;
    return e;
}

ssl::AugmentConfig augment_config(const RunConfig& cfg, const StageConfig& st, int32_t size, int64_t data_c,
                                  const std::vector<double>& mean, const std::vector<double>& std) {
    ssl::AugmentConfig a = stage_augment(cfg, st, size);
    a.gray_to_rgb = data_c == 1 && model_channels(cfg) == 3;
    ssl::set_normalization(a, mean, std);
    return a;
}

void rewrite_metrics_up_to(const std::string& out_dir, const std::string& stage, int64_t step) {
    const std::string path = out_dir + "/metrics.jsonl";
    if (!fs::exists(path)) return;
    std::ifstream in(path);
    std::string line, kept;
    while (std::getline(in, line)) {
        // Lines of this stage logged after the checkpoint describe work that is redone now, and so
        // are its end-of-stage evaluations (a stage without final.safetensors evaluates again).
        try {
            const io::Json j = io::Json::parse(line, path);
            const bool mine = j.has("stage") && j.at("stage").as_string() == stage;
            if (mine && j.has("step") && j.at("step").as_int() > step) continue;
            if (mine && j.has("event") && j.at("event").as_string() == "eval") continue;
        } catch (const Error&) {
            continue;  // a line torn by the kill
        }
        kept += line + "\n";
    }
    io::write_file_atomic(path, kept);
}

int64_t debug_kill_step() {
    const char* e = std::getenv("HPT_DEBUG_KILL_AFTER_STEP");
    return e ? std::atoll(e) : -1;
}

// A stage resumed (or found finished) under a parent other than the one it was trained from would
// record the new parent's hash for weights that never descended from it: stop instead.
// `now` is the parent's hash ("" for random init), which the caller has at hand or computes once.
void check_same_parent(const StageConfig& st, const std::string& dir, const std::string& file, const Manifest& m,
                       const std::string& parent, const std::string& now, bool lead) {
    if (m.parent == parent && m.parent_sha256 == now) return;
    if (!now.empty() && m.parent_sha256 == now) {  // the same file, named otherwise (a moved run, --out spelled otherwise)
        if (lead)
            std::cerr << "stage '" << st.name << "': its parent " << m.parent << " is now named " << parent
                      << " (same sha256)\n";
        return;
    }
    const auto name = [](const std::string& p, const std::string& h) {
        return p.empty() ? std::string("random init") : p + " (sha256 " + h.substr(0, 12) + "...)";
    };
    HPT_THROW("stage '", st.name, "': ", file, " was trained from ", name(m.parent, m.parent_sha256), ", but its parent is now ",
              name(parent, now), ". Restore that parent, or remove ", dir,
              " and the folders of the stages after it to train them again from the new one");
}

// Whether metrics.jsonl holds the monitor line of (stage, step, data).
bool monitor_logged(const std::string& out_dir, const std::string& stage, int64_t step, const std::string& data) {
    const std::string path = out_dir + "/metrics.jsonl";
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        try {
            const io::Json j = io::Json::parse(line, path);
            if (j.at("event").as_string() == "monitor" && j.at("stage").as_string() == stage &&
                j.at("step").as_int() == step && j.at("data").as_string() == data)
                return true;
        } catch (const Error&) {  // a line torn by a kill
        }
    }
    return false;
}

// Tests: HPT_DEBUG_KILL_AT=<point> sends SIGKILL at that point of a stage: "monitor:<step>" (in
// that step's monitor evaluation), "backbone" (backbone.safetensors written, final.safetensors not
// yet) or "final" (final.safetensors written, last.safetensors not yet removed).
void debug_kill_at(const std::string& point) {
    const char* e = std::getenv("HPT_DEBUG_KILL_AT");
    if (e && point == e) std::raise(SIGKILL);
}

// Tests: HPT_DEBUG_SIGINT_AT_STEP=<step> raises SIGINT after that step, as Ctrl-C would;
// "<step>x2" raises it twice, as pressing Ctrl-C twice would.
void debug_signal(int64_t done) {
    const char* e = std::getenv("HPT_DEBUG_SIGINT_AT_STEP");
    if (!e || std::atoll(e) != done) return;
    std::raise(SIGINT);
    if (std::strstr(e, "x2")) std::raise(SIGINT);
}

// Tests: HPT_DEBUG_NAN_AT_STEP=s replaces the loss of step s by NaN, as a diverging run would.
int64_t debug_nan_step() {
    const char* e = std::getenv("HPT_DEBUG_NAN_AT_STEP");
    return e ? std::atoll(e) : -1;
}

// Tests: HPT_DEBUG_FAIL_EVAL=1 makes the end-of-stage evaluation fail, as running out of memory
// there would (a bad eval_data now fails before the training).
void debug_fail_eval() {
    if (std::getenv("HPT_DEBUG_FAIL_EVAL")) HPT_THROW("evaluation failed (HPT_DEBUG_FAIL_EVAL, a test's request)");
}

// A finite loss can still leave inf or NaN weights behind (an overflowing update), or BN running
// statistics (an lr of 1e6 made running_var inf two steps before the loss went NaN, and the
// evaluations of a resume from there were garbage); such a state must never be written as a
// "good" checkpoint. The parameters in one reduction over the flat buffer, then each buffer.
void check_finite_weights(const models::ResNet& model, const std::string& stage, int64_t step, const std::string& last) {
    std::string bad = first_nonfinite({{"a parameter", model.flat_params()}});
    if (bad.empty()) bad = first_nonfinite(model.named_buffers());
    if (bad.empty()) return;
    const std::string keep = fs::exists(last) ? "the last good checkpoint is " + last : "no checkpoint was written yet";
    HPT_THROW("stage '", stage, "': ", bad, " of the query encoder holds inf or NaN after step ", step, "; stopped (",
              keep, "). Lower the learning rate (stage.", stage, ".lr) or check the data");
}

// Tests: HPT_DEBUG_HANG="rank:step" makes that rank stop responding after that step, as a rank
// stuck in a driver call or a deadlock would.
void debug_hang(int64_t rank, int64_t done) {
    const char* e = std::getenv("HPT_DEBUG_HANG");
    if (!e) return;
    long long r = -1, s = -1;
    if (std::sscanf(e, "%lld:%lld", &r, &s) == 2 && r == rank && s == done) {
        for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
    }
}

}  // namespace

void check_stage_data(const RunConfig& cfg, size_t index, int64_t world, bool evaluates) {
    const StageConfig& st = cfg.stages.at(index);
    const std::string w = "stage '" + st.name + "': ";
    const data::Dataset& ds = dataset(st.data, cfg);
    const int64_t n = ds.train.size() + ds.val.size();
    HPT_CHECK(n > 0, w, st.data, " has no train or val images to pretrain on (", ds.test.size(),
              " test images, which stay for evaluation)");
    const std::string held = ds.test_carved ? str(" (", ds.test.size(), " more are held out as its test split)") : "";
    HPT_CHECK(n >= st.batch, w, st.data, " has ", n, " images to pretrain on", held, ", fewer than the batch of ", st.batch);
    HPT_CHECK(st.batch % world == 0, w, "the batch of ", st.batch, " cannot be split evenly over ", world,
              " ranks (stage.", st.name, ".batch is the global batch)");
    const int64_t data_c = (ds.train.size() ? ds.train : ds.val).images.size(3);
    HPT_CHECK(!(data_c == 3 && model_channels(cfg) == 1), w, st.data,
              " has RGB images but the model takes 1 channel (set model.in_channels = 3)");
    if (evaluates && (cfg.eval.knn || cfg.eval.linear_probe)) {
        for (const std::string& d : st.eval_data) {
            const std::string why = why_not_evaluable(dataset(d, cfg));
            HPT_CHECK(why.empty(), w, "eval_data ", d, ": ", why);
        }
    }
    if (st.init != "random" && st.init != "previous") io::read_safetensors_header(st.init);  // a checkpoint at all
}

int64_t model_channels(const RunConfig& cfg) {
    if (cfg.model.in_channels) return cfg.model.in_channels;
    return dataset(cfg.stages.at(0).data, cfg).train.images.size(3);
}

void append_metric(const std::string& out_dir, const io::Json& line) {
    std::ofstream f(out_dir + "/metrics.jsonl", std::ios::app);
    HPT_CHECK(f, "cannot write ", out_dir, "/metrics.jsonl");
    f << line.dump() << "\n";
    f.flush();
    HPT_CHECK(f, "writing ", out_dir, "/metrics.jsonl failed (disk full?)");
}

EvalResult evaluate_backbone(models::ResNet& model, const std::string& path, int64_t image_size, const RunConfig& cfg,
                             Device device) {
    return evaluate_on(model, dataset(path, cfg), path, image_size, cfg.eval, cfg.run.seed, device);
}

StageOutcome run_stage(const StageRun& r) {
    const RunConfig& cfg = *r.cfg;
    const StageConfig& st = cfg.stages.at(r.index);
    HPT_CHECK(r.comm, "run_stage: no communicator");
    dist::Comm& comm = *r.comm;
    const int64_t world = comm.world(), rank = comm.rank();
    const bool lead = rank == 0;  // writes files, evaluates, prints
    const std::string dir = r.out_dir + "/" + st.name;
    const std::string last = dir + "/last.safetensors", final_path = dir + "/final.safetensors";
    StageOutcome out;
    out.name = st.name;
    out.iterations = st.iterations;
    out.final_checkpoint = final_path;
    out.backbone = dir + "/backbone.safetensors";

    if (r.resume && fs::exists(final_path)) {
        const Checkpoint c = read_checkpoint(final_path);
        if (c.has_manifest)
            check_same_parent(st, dir, final_path, c.manifest, r.init_path,
                              r.init_path.empty() ? "" : io::sha256_file(r.init_path), lead);
        if (r.checked) r.checked();
        out.skipped = true;
        out.iterations = c.manifest.step;  // what ran, whatever the config now says
        out.seconds = c.manifest.seconds;  // 0 in checkpoints written before it was recorded
        if (lead && c.manifest.step != st.iterations)
            std::cerr << "warning: stage '" << st.name << "' finished with " << c.manifest.step
                      << " iterations; the config now says " << st.iterations << " (" << final_path
                      << " is kept; remove " << dir << " and the folders of the stages after it to train them again)\n";
        if (c.manifest.results.is_array()) {
            for (const io::Json& e : c.manifest.results.as_array()) {
                out.evals.push_back(StageEval{e.at("data").as_string(), get_accuracies(e)});
            }
        }
        if (out.evals.empty()) out.not_evaluated = "no evaluation is recorded in " + final_path;
        if (lead) {
            std::cerr << "[" << st.name << "] already finished (" << final_path << ")\n";
            std::error_code ec;  // a kill between final.safetensors and this removal left it behind
            fs::remove(last, ec);
        }
        return out;
    }
    HPT_CHECK(r.resume || !fs::exists(last), "stage '", st.name, "': ", last,
              " exists from an earlier run; pass --resume to continue it or choose another --out");
    fs::create_directories(dir);

    const data::Dataset& ds = dataset(st.data, cfg);  // run_pipeline has checked it (check_stage_data)
    const Tensor images = pretraining_images(ds);
    const int64_t n = images.size(0), data_c = images.size(3);
    if (lead && ds.test_carved)
        std::cerr << "[" << st.name << "] " << st.data << " has no test split: " << ds.test.size()
                  << " of its labeled images (about " << 100 * data::LoadOptions().test_fraction
                  << "%, the same in every run) are its test split, not pretrained on\n";
    const int32_t size = int32_t(st.image_size ? st.image_size : images.size(1));
    // Where the stage is evaluated: its eval_data, or else its own data when that is labeled. An
    // eval_data that cannot be evaluated on fails here, before the training; unlabeled pretraining
    // data (a folder of one's own images: the common case) is just not evaluated.
    std::vector<std::string> eval_sets;
    if (lead && (cfg.eval.knn || cfg.eval.linear_probe)) {
        const std::string why = st.eval_data.empty() ? why_not_evaluable(ds) : "";
        if (why.empty()) {
            eval_sets = st.eval_data.empty() ? std::vector<std::string>{st.data} : st.eval_data;
        } else {
            out.not_evaluated = st.data + ": " + why + " (stage." + st.name + ".eval_data names labeled data to evaluate on)";
            std::cerr << "[" << st.name << "] no evaluation: " << out.not_evaluated << "\n";
        }
    } else if (lead) {
        out.not_evaluated = "eval.knn and eval.linear_probe are both off";
    }
    const auto [mean, std] = data::normalization_mean_std(ds.train.size() ? ds.train : ds.val);
    const ssl::AugmentConfig aug = augment_config(cfg, st, size, data_c, mean, std);

    ssl::MocoConfig mc;
    mc.queue_size = cfg.moco.queue;
    mc.momentum = cfg.moco.momentum;
    mc.temperature = cfg.moco.temperature;
    mc.bn_groups = cfg.moco.bn_groups;
    Generator init(cfg.run.seed, 0x494e4954ull + r.index);  // "INIT"
    ssl::Moco moco(encoder_config(cfg), mc, init, r.device);
    Manifest man;
    man.stage = st.name;
    man.iterations = st.iterations;
    man.seed = cfg.run.seed;
    man.dataset = st.data;
    man.images = n;
    man.image_size = size;
    man.mean = mean;
    man.std = std;
    man.config = to_json(cfg);
    if (!r.init_path.empty()) {
        const Checkpoint c = read_checkpoint(r.init_path);
        load_backbone(c, moco.query(), r.init_path);
        man.parent = r.init_path;
        man.parent_sha256 = io::sha256_file(r.init_path);
    }
    // DESIGN.md §2: every stage, from a parent or from random init, starts with a head drawn by
    // the same rule (Kaiming normal, fan_in), a key encoder copied from the query and a fresh queue.
    moco.query().reset_head(init);
    moco.key().copy_state_from(moco.query());
    if (st.trainable == "bn") {  // HPT-BN: convs frozen (no grad, no decay); BN affine and head train
        for (auto& c : moco.query().convs()) c->weight.requires_grad_(false);
    }
    optim::SGD opt(moco.query(), {st.effective_lr(), 0.9, st.weight_decay});

    int64_t start = 0;
    double seconds_before = 0;  // training time before this resume, for the stage's total
    if (r.resume && fs::exists(last)) {
        const Checkpoint c = read_checkpoint(last);
        HPT_CHECK(c.has_manifest && c.manifest.stage == st.name, last, " is not a checkpoint of stage '", st.name, "'");
        // Where the run's files go is no setting of the training: a moved run, or --out spelled
        // otherwise, warned of a difference it did not name.
        io::Json then = c.manifest.config;
        if (then.has("run") && man.config.has("run")) then["run"]["out"] = man.config.at("run").at("out");
        const std::string differs = config_changes(then, man.config);
        if (lead && !differs.empty())
            std::cerr << "warning: the config differs from the one " << last << " was written with:" << differs << "\n";
        check_same_parent(st, dir, last, c.manifest, r.init_path, man.parent_sha256, lead);  // hashed above, once
        HPT_CHECK(c.manifest.step <= st.iterations, "stage '", st.name, "': ", last, " has trained ", c.manifest.step,
                  " steps, more than the ", st.iterations, " iterations the config now asks for (stage.", st.name,
                  ".iterations); ask for at least ", c.manifest.step);
        restore(c, moco, opt);
        start = c.manifest.step;
        seconds_before = c.manifest.seconds;
        // Images added or removed, or a version that holds some labeled images out as test: the
        // epochs from here differ from the ones before, and the user should know it.
        if (lead && c.manifest.images > 0 && c.manifest.images != n)
            std::cerr << "warning: stage '" << st.name << "': " << last << " was trained on " << c.manifest.images
                      << " images of " << st.data << ", which now gives " << n << "; the stage continues on the " << n << "\n";
        if (lead) {
            rewrite_metrics_up_to(r.out_dir, st.name, start);
            append_metric(r.out_dir, io::Json::object({{"event", io::Json::string("resume")},
                                                      {"stage", io::Json::string(st.name)},
                                                      {"step", io::Json::integer(start)},
                                                      {"images", io::Json::integer(n)}}));
            std::cerr << "[" << st.name << "] resuming at step " << start << " from " << last << "\n";
        }
    } else if (r.resume && lead) {
        rewrite_metrics_up_to(r.out_dir, st.name, 0);  // killed before its first checkpoint: start over
        std::cerr << "[" << st.name << "] no checkpoint to resume from (" << last << "): starting at step 0"
                  << (cfg.run.checkpoint_every == 0 || cfg.run.checkpoint_every >= st.iterations
                          ? str(" (run.checkpoint_every = ", cfg.run.checkpoint_every, " saves none before the stage's end)")
                          : std::string())
                  << "\n";
    }
    if (r.checked) r.checked();
    // Every rank starts from rank 0's state: the same weights, BN statistics and queue.
    dist::broadcast_state(moco.query(), comm);
    dist::broadcast_state(moco.key(), comm);
    comm.broadcast(moco.queue(), 0);
    dist::GradReducer reducer(moco.query(), comm, int64_t(cfg.dist.bucket_mb * (1 << 20)));

    const int64_t spe = n / st.batch;  // drop_last
    const int64_t kill_at = debug_kill_step(), nan_at = debug_nan_step();
    const double lr0 = st.effective_lr();
    const uint64_t seed = cfg.run.seed ^ (0x9E3779B97F4A7C15ull * (r.index + 1));
    Progress prog(st.name, st.iterations, cfg.run.log_every);
    auto loader = std::make_unique<data::Loader>(
        pretraining_set(images), step_loader_config(st, aug, mean, std, r.device, seed, n, rank, world));
    int64_t loader_epoch = -1;
    double loss_value = 0;
    moco.query().train();
    moco.key().train();
    // Every checkpoint first puts the metrics lines it covers on the disk (a resume keeps those
    // lines; appends are not synced otherwise).
    auto save = [&](const std::string& path, const Manifest& m) {
        io::sync_file(r.out_dir + "/metrics.jsonl");
        save_checkpoint(path, moco, opt, m);
    };
    auto checkpoint_manifest = [&](int64_t step) {
        Manifest m = man;
        m.step = step;
        m.queue_ptr = moco.queue_ptr();
        m.seconds = seconds_before + prog.elapsed();
        return m;
    };
    const auto monitor_step = [&](int64_t done) {
        return cfg.eval.every > 0 && done % cfg.eval.every == 0 && done < st.iterations;
    };
    // The monitor evaluation at step `done`: kNN (cheap), and the probe when asked, on each
    // evaluation set (where `only_missing`, those without a line yet).
    const auto monitor_at = [&](int64_t done, bool only_missing) {
        RunConfig c2 = cfg;
        c2.eval.linear_probe = cfg.eval.linear_probe && cfg.eval.monitor_probe;
        for (const std::string& d : eval_sets) {
            if (world == 1 && interrupt_signal()) return;  // a signal meanwhile: the rest after the resume
            if (only_missing && monitor_logged(r.out_dir, st.name, done, d)) continue;
            const EvalResult e = evaluate_backbone(moco.query(), d, size, c2, r.device);
            std::fprintf(stderr, "[%s] step %lld on %s: kNN %.2f%%", st.name.c_str(), static_cast<long long>(done),
                         d.c_str(), 100 * e.knn_test_acc);
            debug_kill_at("monitor:" + std::to_string(done));
            if (c2.eval.linear_probe) std::fprintf(stderr, ", linear probe %.2f%%", 100 * e.probe_test_acc);
            std::fprintf(stderr, "\n");
            io::Json line = io::Json::object({{"event", io::Json::string("monitor")},
                                              {"stage", io::Json::string(st.name)},
                                              {"step", io::Json::integer(done)},
                                              {"data", io::Json::string(d)}});
            put_accuracies(line, e);
            append_metric(r.out_dir, line);
        }
    };
    // A checkpoint is saved before its step's monitor, so a kill (or an error: out of memory) in
    // the monitor loses no training; resumed from that checkpoint, the stage evaluates what the
    // monitor had not logged.
    if (start > 0 && monitor_step(start)) {
        if (lead) monitor_at(start, true);
        comm.barrier(0);
    }
    for (int64_t step = start; step < st.iterations; ++step) {
        const int64_t epoch = step / spe, within = step % spe;
        if (epoch != loader_epoch) loader->start_epoch(epoch, within), loader_epoch = epoch;
        data::Batch batch;
        HPT_CHECK(loader->next(batch), "stage '", st.name, "': the loader ended epoch ", epoch, " before batch ", within);
        const std::vector<int64_t> key_perm = ssl::Moco::shuffle_permutation(st.batch, seed, step);
        const Tensor& view1 = batch.view1;
        const Tensor& key_input = batch.view2;
        const Tensor loss = moco.loss_on_rank(view1, key_input, key_perm, comm);
        moco.query().zero_grad();
        loss.backward();
        reducer.finish();  // gradients averaged over the ranks (most buckets already were, during backward)
        const double lr = optim::cosine_lr(lr0, step, st.iterations);
        opt.step(lr);
        moco.enqueue();
        // The loss is read once the whole step is queued: reading it right after the forward made
        // the host wait for the GPU before it could launch the backward. A non-finite loss now
        // stops the run after its update, whose weights are never saved (the last checkpoint stays).
        loss_value = step + 1 == nan_at ? std::nan("") : loss.item<double>();
        int stop_signal = interrupt_signal();
        if (world > 1) {
            // The global batch's loss, so that every rank sees (and stops on) the same value, and
            // how many ranks were asked to stop by SIGTERM and by SIGINT, so that all stop after the
            // same step, for the same reason. On the training device: NCCL reduces only tensors on
            // its GPU.
            Tensor l = full({3}, 0.0, DType::f64, Device::cpu());
            l.data<double>()[0] = loss_value;
            l.data<double>()[1] = stop_signal == SIGTERM;
            l.data<double>()[2] = stop_signal != 0 && stop_signal != SIGTERM;
            l = l.to(r.device);
            comm.all_reduce_sum(l);
            const std::vector<double> v = l.to(Device::cpu()).to_vector<double>();
            loss_value = v[0] / double(world);
            stop_signal = v[1] > 0 ? SIGTERM : v[2] > 0 ? SIGINT : 0;
        }
        if (!std::isfinite(loss_value)) {
            const std::string keep = fs::exists(last) ? "the last good checkpoint is " + last : "no checkpoint was written yet";
            HPT_THROW("stage '", st.name, "': the loss is ", loss_value, " at step ", step + 1,
                      "; stopped (", keep, "). Lower the learning rate (stage.", st.name, ".lr) or check the data");
        }
        const int64_t done = step + 1;
        if (lead) prog.update(done, loss_value, lr, st.batch);
        if (lead && (done % cfg.run.log_every == 0 || done == st.iterations)) {
            append_metric(r.out_dir, io::Json::object({{"event", io::Json::string("step")},
                                                      {"stage", io::Json::string(st.name)},
                                                      {"step", io::Json::integer(done)},
                                                      {"loss", io::Json::number(loss_value)},
                                                      {"lr", io::Json::number(lr)},
                                                      {"images_per_s", io::Json::number(prog.images_per_second())}}));
        }
        if (lead && cfg.run.checkpoint_every > 0 && done % cfg.run.checkpoint_every == 0 && done < st.iterations) {
            check_finite_weights(moco.query(), st.name, done, last);
            prog.off_the_clock([&] { save(last, checkpoint_manifest(done)); });
        }
        debug_signal(done);
        if (world == 1) stop_signal = interrupt_signal();  // several ranks use what they agreed on above
        // A stop request skips the step's monitor: the checkpoint comes first (a scheduler's grace
        // period between SIGTERM and SIGKILL may be shorter than a probe), and the resume runs the
        // monitor it missed.
        const bool monitor = monitor_step(done) && !stop_signal;
        if (monitor)
            prog.off_the_clock([&] {
                if (lead) monitor_at(done, false);
                comm.barrier(0);  // rank 0 evaluated meanwhile: no limit on that wait
            });
        if (world == 1 && !stop_signal) stop_signal = interrupt_signal();  // one that came during the monitor
        if (stop_signal) {
            const bool saved = cfg.run.checkpoint_every > 0 && done % cfg.run.checkpoint_every == 0 && done < st.iterations;
            if (lead && !saved) {
                check_finite_weights(moco.query(), st.name, done, last);
                save(last, checkpoint_manifest(done));
            }
            if (world > 1) comm.barrier(0);  // a rank that exits first makes mpirun end the others, mid-write
            throw Interrupted(str("stage '", st.name, "': stopped after step ", done, " of ", st.iterations, " (signal ",
                                  stop_signal, "), saved in ", last, "; continue with --resume"),
                              stop_signal);
        }
        if (done == kill_at) std::raise(SIGKILL);  // tests: a kill at a chosen moment
        debug_hang(rank, done);
    }
    loader.reset();  // its worker and prefetched batches go before the evaluation
    if (lead) prog.finish();
    out.seconds = seconds_before + prog.elapsed();
    out.final_loss = loss_value;

    if (!lead) {
        comm.barrier(0);  // until rank 0 has evaluated and written the stage's files
        return out;
    }
    // The trained state goes to disk before evaluation, so that an evaluation that fails (bad
    // eval data, out of memory) costs a re-evaluation on --resume, not the training.
    check_finite_weights(moco.query(), st.name, st.iterations, last);
    if (start < st.iterations) save(last, checkpoint_manifest(st.iterations));
    io::Json results = io::Json::array();
    for (const std::string& d : eval_sets) {
        std::cerr << "[" << st.name << "] evaluating on " << d << "\n";
        debug_fail_eval();
        StageEval se{d, evaluate_backbone(moco.query(), d, size, cfg, r.device)};
        out.evals.push_back(se);
        io::Json e = io::Json::object({{"data", io::Json::string(d)}});
        put_accuracies(e, se.result);
        results.push_back(e);
        io::Json line = e;
        line["event"] = io::Json::string("eval");
        line["stage"] = io::Json::string(st.name);
        line["step"] = io::Json::integer(st.iterations);
        append_metric(r.out_dir, line);
    }
    Manifest fm = checkpoint_manifest(st.iterations);
    fm.seconds = out.seconds;  // training time, as the summary has it (not the evaluation's)
    fm.final = true;
    fm.results = results;
    // The backbone before final.safetensors, which marks the stage finished: a kill between the two
    // otherwise left a finished stage without its backbone for good.
    save_backbone(out.backbone, moco.query(), fm);
    debug_kill_at("backbone");
    save(final_path, fm);
    debug_kill_at("final");
    std::error_code ec;
    fs::remove(last, ec);
    comm.barrier(0);
    return out;
}

}  // namespace hpt::pipeline
