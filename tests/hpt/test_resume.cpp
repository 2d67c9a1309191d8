// A run killed mid-stage and resumed gives, on the CPU, exactly the losses of an uninterrupted run;
// bad runs stop with clear errors and keep what they had.
#include <cstdint>
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <sys/wait.h>

#include <cmath>
#include <csignal>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "engine/data/gzip.h"
#include "engine/io/atomic_file.h"
#include "engine/io/json.h"
#include "engine/io/safetensors.h"
#include "engine/io/sha256.h"
#include "hpt/embed.h"
#include "hpt/checkpoint.h"
#include "hpt/example.h"
#include "hpt/pipeline.h"
#include "tests/data/fixtures.h"
#include "tests/hpt/tiny_run.h"
#include "engine/core/work_progress.h"
#include "tests/support/stderr_capture.h"

using namespace hpt;
using namespace hpt::pipeline;
using hpt::test::losses;
using hpt::test::run_hpt;
using hpt::test::tmp_dir;
using hpt::test::write_config;
namespace fs = std::filesystem;

namespace {

// That run as a RunConfig writing into dir/out, with its first `stages` stages.
RunConfig tiny_run(const std::string& dir, int64_t iterations, size_t stages = 2) {
    RunConfig cfg = load_config(write_config(dir, iterations));
    cfg.stages.resize(stages);
    cfg.run.out = dir + "/out";
    return cfg;
}

// The losses of the config at cfg_path run uninterrupted into dir/straight.
std::map<std::pair<std::string, int64_t>, std::string> straight_losses(const std::string& dir, const std::string& cfg_path) {
    RunConfig cfg = load_config(cfg_path);
    cfg.run.out = dir + "/straight";
    run_pipeline(cfg, false);
    return losses(dir + "/straight/metrics.jsonl");
}

}  // namespace

TEST_CASE("a killed run resumes and reproduces the uninterrupted losses bit for bit", "[hpt][resume]") {
    const std::string dir = tmp_dir("resume");
    const std::string cfg_path = write_config(dir, 10);
    const auto expected = straight_losses(dir, cfg_path);
    REQUIRE(expected.size() == 20);

    // Killed (SIGKILL) right after step 6 of stage a: its last checkpoint is from step 4, and
    // steps 5-6 are lost and redone.
    const std::string args = "train --config '" + cfg_path + "' --out '" + dir + "/killed'";
    CHECK(run_hpt(args, "HPT_DEBUG_KILL_AFTER_STEP=6") == 128 + SIGKILL);
    CHECK(fs::exists(dir + "/killed/a/last.safetensors"));
    const Checkpoint ck = read_checkpoint(dir + "/killed/a/last.safetensors");
    CHECK(ck.manifest.step == 4);
    CHECK_FALSE(fs::exists(dir + "/killed/a/final.safetensors"));

    CHECK(run_hpt(args + " --resume") == 0);
    const auto got = losses(dir + "/killed/metrics.jsonl");
    CHECK(got == expected);
    CHECK(fs::exists(dir + "/killed/b/final.safetensors"));
    CHECK_FALSE(fs::exists(dir + "/killed/a/last.safetensors"));

    // Resuming a finished run does nothing and succeeds.
    CHECK(run_hpt(args + " --resume") == 0);
    fs::remove_all(dir);
}

TEST_CASE("a kill during a monitor or between a stage's last files resumes to the straight run's files", "[hpt][resume]") {
    // Found by killing runs at every rename and fsync: a kill between final.safetensors and the
    // backbone left the stage without backbone.safetensors for good (and last.safetensors behind);
    // a kill in a monitor evaluation at a checkpoint step lost that monitor line (now redone on
    // resume, from the checkpoint saved before it).
    const std::string dir = tmp_dir("killpoints");
    const std::string cfg_path = write_config(dir, 8);
    const auto run = [&](const std::string& out, const std::string& extra, const std::string& env = "") {
        return run_hpt("train --config '" + cfg_path + "' --out '" + dir + "/" + out + "' --set eval.every=4" + extra, env);
    };
    // (event, stage, step) of every evaluation line, in order.
    const auto evaluations = [](const std::string& metrics) {
        std::vector<std::string> v;
        std::ifstream in(metrics);
        std::string line;
        while (std::getline(in, line)) {
            const io::Json j = io::Json::parse(line, metrics);
            const std::string ev = j.at("event").as_string();
            if (ev != "monitor" && ev != "eval") continue;
            v.push_back(ev + " " + j.at("stage").as_string() + " " + std::to_string(j.at("step").as_int()));
            CHECK(j.at("probe_test_acc").is_null());  // the probe is off in this config (it said -1)
            CHECK(j.at("knn_test_acc").as_double() > 0.1);
        }
        return v;
    };
    const auto tensor_bytes = [](const std::string& path) {
        std::vector<std::pair<std::string, std::vector<uint8_t>>> v;
        for (const auto& [name, t] : read_checkpoint(path).tensors.tensors) {
            const uint8_t* p = static_cast<const uint8_t*>(t.data_ptr());
            v.emplace_back(name, std::vector<uint8_t>(p, p + size_t(t.numel()) * t.element_size()));
        }
        return v;
    };
    REQUIRE(run("straight", "") == 0);
    const auto expected = losses(dir + "/straight/metrics.jsonl");
    const auto expected_evals = evaluations(dir + "/straight/metrics.jsonl");
    REQUIRE(expected_evals.size() == 4);  // a monitor at step 4 and an eval at 8, per stage
    for (const std::string point : {"monitor:4", "backbone", "final"}) {
        INFO("killed at " << point);
        const std::string out = "k_" + point.substr(0, 5);
        CHECK(run(out, "", "HPT_DEBUG_KILL_AT=" + point) == 128 + SIGKILL);
        CHECK(run(out, " --resume") == 0);
        CHECK(losses(dir + "/" + out + "/metrics.jsonl") == expected);
        CHECK(evaluations(dir + "/" + out + "/metrics.jsonl") == expected_evals);
        CHECK_FALSE(fs::exists(dir + "/" + out + "/config.json.1"));  // the same config: nothing kept aside
        if (point == "monitor:4") {  // its checkpoint came first: the resume lost no training
            std::ifstream in(dir + "/" + out + "/metrics.jsonl");
            std::string line;
            int64_t resumed_at = -1;
            while (std::getline(in, line))
                if (line.find("\"event\":\"resume\"") != std::string::npos)
                    resumed_at = io::Json::parse(line).at("step").as_int();
            CHECK(resumed_at == 4);
        }
        for (const char* stage : {"a", "b"}) {
            CHECK(fs::exists(dir + "/" + out + "/" + stage + "/backbone.safetensors"));
            CHECK(tensor_bytes(dir + "/" + out + "/" + stage + "/final.safetensors") ==
                  tensor_bytes(dir + "/straight/" + stage + "/final.safetensors"));  // manifests name their folder
            CHECK_FALSE(fs::exists(dir + "/" + out + "/" + stage + "/last.safetensors"));
        }
    }
    fs::remove_all(dir);
}

TEST_CASE("Ctrl-C stops a run after the step with a checkpoint there; a second Ctrl-C stops it at once", "[hpt][resume]") {
    const std::string dir = tmp_dir("sigint");
    const std::string cfg_path = write_config(dir, 10);
    const auto expected = straight_losses(dir, cfg_path);
    const auto args = [&](const std::string& out) { return "train --config '" + cfg_path + "' --out '" + dir + "/" + out + "'"; };

    // Before, the signal's default ended the process with nothing saved since step 4.
    CHECK(run_hpt(args("once"), "HPT_DEBUG_SIGINT_AT_STEP=6") == 128 + SIGINT);
    CHECK(read_checkpoint(dir + "/once/a/last.safetensors").manifest.step == 6);
    CHECK(losses(dir + "/once/metrics.jsonl").size() == 6);
    CHECK(run_hpt(args("once") + " --resume") == 0);
    CHECK(losses(dir + "/once/metrics.jsonl") == expected);

    CHECK(run_hpt(args("twice"), "HPT_DEBUG_SIGINT_AT_STEP=6x2") == 128 + SIGINT);
    CHECK(read_checkpoint(dir + "/twice/a/last.safetensors").manifest.step == 4);
    CHECK(run_hpt(args("twice") + " --resume") == 0);
    CHECK(losses(dir + "/twice/metrics.jsonl") == expected);

    // A stop at a monitor step saves before that monitor, which the resume then runs: the monitor
    // (possibly a long probe) ran first, and a short grace period before SIGKILL lost the step.
    const auto monitors_at_6 = [&](const std::string& out) {
        std::ifstream in(dir + "/" + out + "/metrics.jsonl");
        int n = 0;
        for (std::string line; std::getline(in, line);) {
            const io::Json j = io::Json::parse(line, "metrics");
            n += j.at("event").as_string() == "monitor" && j.at("stage").as_string() == "a" && j.at("step").as_int() == 6;
        }
        return n;
    };
    CHECK(run_hpt(args("monitor") + " --set eval.every=3", "HPT_DEBUG_SIGINT_AT_STEP=6") == 128 + SIGINT);
    CHECK(read_checkpoint(dir + "/monitor/a/last.safetensors").manifest.step == 6);
    CHECK(monitors_at_6("monitor") == 0);
    CHECK(run_hpt(args("monitor") + " --set eval.every=3 --resume") == 0);
    CHECK(monitors_at_6("monitor") == 1);
    CHECK(losses(dir + "/monitor/metrics.jsonl") == expected);
    fs::remove_all(dir);
}

TEST_CASE("a run refuses to overwrite an earlier one without --resume", "[hpt]") {
    const std::string dir = tmp_dir("overwrite");
    RunConfig cfg = tiny_run(dir, 2);
    run_pipeline(cfg, false);
    CHECK_THROWS_WITH(run_pipeline(cfg, false), Catch::Contains("already holds a run") && Catch::Contains("--resume"));
    fs::remove_all(dir);
}

TEST_CASE("a NaN loss stops the run naming the step and keeps the last good checkpoint", "[hpt]") {
    const std::string dir = tmp_dir("nan");
    RunConfig cfg = tiny_run(dir, 12);
    {  // a diverging learning rate: stops at its first steps, before any checkpoint
        RunConfig wild = cfg;
        wild.run.out = dir + "/wild";
        apply_override(wild, "stage.a.lr=1e30");
        try {
            run_pipeline(wild, false);
            FAIL("no error");
        } catch (const Error& e) {
            const std::string m = e.what();
            CHECK_THAT(m, Catch::Contains("stage 'a': the loss is") && Catch::Contains("at step"));
            CHECK_THAT(m, Catch::Contains("stage.a.lr"));
        }
    }
    // NaN at step 7, after the checkpoint of step 4: that checkpoint survives, untouched, and the
    // run resumes from it once the cause is gone.
    ::setenv("HPT_DEBUG_NAN_AT_STEP", "7", 1);
    std::string msg;
    try {
        run_pipeline(cfg, false);
    } catch (const Error& e) {
        msg = e.what();
    }
    ::unsetenv("HPT_DEBUG_NAN_AT_STEP");
    CHECK_THAT(msg, Catch::Contains("the loss is nan at step 7") && Catch::Contains("last good checkpoint is " + dir + "/out/a/last.safetensors"));
    REQUIRE(fs::exists(dir + "/out/a/last.safetensors"));
    CHECK(read_checkpoint(dir + "/out/a/last.safetensors").manifest.step == 4);
    CHECK_FALSE(fs::exists(dir + "/out/a/final.safetensors"));
    {  // A BN running variance of NaN in it: the resume trained on and recorded a kNN of 9%.
        const std::string last = dir + "/out/a/last.safetensors", kept = dir + "/kept.safetensors";
        fs::copy_file(last, kept);
        io::Safetensors f = io::load_safetensors(last);
        for (auto& [name, t] : f.tensors)
            if (name == "encoder_q.bn1.running_var") t = full(t.shape(), NAN, t.dtype());
        io::save_safetensors(last, f.tensors, f.metadata);
        CHECK_THROWS_WITH(run_pipeline(cfg, true), Catch::Contains("tensor 'encoder_q.bn1.running_var' holds inf or NaN"));
        // A manifest's step of -3: the resume deleted the stage's metrics lines before the loader
        // refused it.
        fs::copy_file(kept, last, fs::copy_options::overwrite_existing);
        f = io::load_safetensors(last);
        io::Json man = io::Json::parse(f.metadata.at("hpt_manifest"), last);
        man["step"] = io::Json::integer(-3);
        f.metadata["hpt_manifest"] = man.dump();
        io::save_safetensors(last, f.tensors, f.metadata);
        const std::string metrics = io::read_file(dir + "/out/metrics.jsonl");
        CHECK_THROWS_WITH(run_pipeline(cfg, true), Catch::Contains("step = -3 (must be in [0, iterations])"));
        CHECK(io::read_file(dir + "/out/metrics.jsonl") == metrics);
        fs::rename(kept, last);
    }
    {  // resumed with --out spelled otherwise: it warned that the config differed, naming nothing
        RunConfig respelled = cfg;
        respelled.run.out = dir + "/./out";
        test::StderrCapture err;
        run_pipeline(respelled, true);
        CHECK(err.text().find("config differs from the one") == std::string::npos);
    }
    CHECK(fs::exists(dir + "/out/b/final.safetensors"));
    fs::remove_all(dir);
}

TEST_CASE("an eval_data that cannot be evaluated on fails before the training", "[hpt]") {
    const std::string dir = tmp_dir("evalbad");
    RunConfig cfg = tiny_run(dir, 6, 1);
    cfg.stages[0].eval_data = {dir + "/run.toml"};  // exists, but is no dataset
    CHECK_THROWS_WITH(run_pipeline(cfg, false), Catch::Contains(dir + "/run.toml"));
    CHECK_FALSE(fs::exists(dir + "/out/a/last.safetensors"));
    CHECK(losses(dir + "/out/metrics.jsonl").empty());  // not one step trained
    fs::remove_all(dir);
}

TEST_CASE("an evaluation that fails after training loses no training; --resume only re-evaluates", "[hpt]") {
    const std::string dir = tmp_dir("evalfail");
    RunConfig cfg = tiny_run(dir, 6, 1);
    ::setenv("HPT_DEBUG_FAIL_EVAL", "1", 1);  // as running out of memory in the evaluation would
    CHECK_THROWS_WITH(run_pipeline(cfg, false), Catch::Contains("HPT_DEBUG_FAIL_EVAL"));
    ::unsetenv("HPT_DEBUG_FAIL_EVAL");
    REQUIRE(fs::exists(dir + "/out/a/last.safetensors"));
    CHECK(read_checkpoint(dir + "/out/a/last.safetensors").manifest.step == 6);
    const auto trained = losses(dir + "/out/metrics.jsonl");
    CHECK(trained.size() == 6);

    const RunResult r = run_pipeline(cfg, true);
    CHECK(losses(dir + "/out/metrics.jsonl") == trained);  // no step was trained again
    REQUIRE(r.stages.size() == 1);
    REQUIRE(r.stages[0].evals.size() == 1);
    CHECK(r.stages[0].evals[0].result.knn_test_acc > 0.2);  // digits, 10 classes
    CHECK(fs::exists(dir + "/out/a/final.safetensors"));
    fs::remove_all(dir);
}

TEST_CASE("evaluations at chosen steps: kNN, and the linear probe when asked", "[hpt]") {
    const std::string dir = tmp_dir("monitor");
    RunConfig cfg = tiny_run(dir, 4, 1);
    cfg.eval.every = 2;
    cfg.eval.linear_probe = true;
    cfg.eval.probe_epochs = 4;
    cfg.eval.monitor_probe = true;
    run_pipeline(cfg, false);
    std::ifstream in(dir + "/out/metrics.jsonl");
    std::string line;
    int monitors = 0, evals = 0;
    while (std::getline(in, line)) {
        const io::Json j = io::Json::parse(line, "metrics");
        const std::string ev = j.at("event").as_string();
        if (ev == "monitor") {
            ++monitors;
            CHECK(j.at("step").as_int() == 2);  // every 2 steps, not at the stage's end (that is "eval")
            CHECK(j.at("knn_test_acc").as_double() > 0.2);
            CHECK(j.at("probe_test_acc").as_double() > 0.2);  // digits, 10 classes
            CHECK(j.at("probe_val_acc").as_double() > 0.2);
        }
        evals += ev == "eval";
    }
    CHECK(monitors == 1);
    CHECK(evals == 1);
    fs::remove_all(dir);
}

TEST_CASE("HPT-BN trains BN and the head from the previous stage and leaves every conv as it was", "[hpt]") {
    const std::string dir = tmp_dir("hptbn");
    RunConfig cfg = tiny_run(dir, 4);  // stage b: init previous, trainable bn
    run_pipeline(cfg, false);
    const Checkpoint a = read_checkpoint(dir + "/out/a/final.safetensors"), b = read_checkpoint(dir + "/out/b/final.safetensors");
    CHECK(b.manifest.parent == dir + "/out/a/final.safetensors");
    int convs = 0, bns_changed = 0, bns = 0;
    for (const auto& [name, t] : b.tensors.tensors) {
        if (name.rfind("encoder_q.", 0) != 0 || name.rfind("encoder_q.fc.", 0) == 0) continue;
        const Tensor* before = a.tensors.find(name);
        REQUIRE(before);
        const bool same = t.to_vector<double>() == before->to_vector<double>();
        if (name.find("conv") != std::string::npos || name.find("downsample.0.") != std::string::npos) {
            INFO(name);
            CHECK(same);
            ++convs;
        } else if (name.find("running_mean") != std::string::npos || (name.find("bn") != std::string::npos &&
                                                                     name.find("weight") != std::string::npos)) {
            bns_changed += !same;
            ++bns;
        }
    }
    CHECK(convs == 20);  // ResNet-18: 17 convs in the stem and blocks plus 3 downsample convs
    CHECK(bns > 0);
    CHECK(bns_changed == bns);
    fs::remove_all(dir);
}

TEST_CASE("checkpoint manifests name their parent by hash; embed reads both checkpoint kinds", "[hpt][embed]") {
    const std::string dir = tmp_dir("embed");
    RunConfig cfg = tiny_run(dir, 2);
    cfg.stages[1].image_size = 0;  // the data's own size (8), which the manifest records resolved
    run_pipeline(cfg, false);
    const std::string a = dir + "/out/a/final.safetensors", b = dir + "/out/b/final.safetensors";
    const Manifest m = read_checkpoint(b).manifest;
    CHECK(m.stage == "b");
    CHECK(m.final);
    CHECK(m.step == 2);
    CHECK(m.iterations == 2);
    CHECK(m.seed == 3);
    CHECK(m.dataset == sklearn_digits());
    CHECK(m.engine_version == HPT_VERSION);
    CHECK(m.parent == a);
    CHECK(m.parent_sha256 == io::sha256_file(a));
    CHECK(m.parent_sha256.size() == 64);
    REQUIRE(m.results.is_array());
    CHECK(from_json(m.config).stages.size() == 2);
    CHECK(read_checkpoint(a).manifest.parent.empty());  // random init: no parent
    CHECK(m.image_size == 8);  // eval and embed took 0 as the evaluated data's own size
    REQUIRE(m.mean.size() == 1);  // digits: one channel, statistics of the pretraining images
    CHECK(m.mean[0] > 0);
    CHECK(m.std[0] > 0);

    // The backbone file (bare torchvision names, no head) gives the same features as the full
    // checkpoint it came from.
    BackboneRequest r;
    r.data = sklearn_digits();
    r.split = "test";
    r.device = "cpu";
    r.checkpoint = b;
    const Embedding full = embed(r);
    const Tensor &f_full = full.features, &labels = full.labels;
    r.checkpoint = dir + "/out/b/backbone.safetensors";
    const Embedding bare = embed(r);
    const Tensor &f_bare = bare.features, &labels2 = bare.labels;
    CHECK(f_full.shape() == Shape{359, 64});  // digits' test split; ResNet-18 at width 1/8: 64 features
    CHECK(f_full.dtype() == DType::f32);
    CHECK(f_full.to_vector<float>() == f_bare.to_vector<float>());
    CHECK(labels.to_vector<int64_t>() == labels2.to_vector<int64_t>());
    // hpt_run eval on a run's checkpoint reproduces the run's own evaluation: the run's [eval]
    // (knn_k 5, max_train 300 here) and seed; it used the defaults and seed 0.
    {
        BackboneRequest er = r;
        er.checkpoint = b;
        const CheckpointEval ce = evaluate_checkpoint(er);
        CHECK(ce.settings_from_run);
        CHECK(ce.settings.knn_k == 5);
        REQUIRE(m.results.as_array().size() == 1);
        CHECK(ce.result.knn_test_acc == get_accuracies(m.results.as_array()[0]).knn_test_acc);
        CHECK(evaluate_checkpoint(er, {"eval.knn_k=7"}).settings.knn_k == 7);
    }
    // embed's val split is the run's (carved with its seed 3; embed carved with seed 0).
    {
        BackboneRequest vr = r;
        vr.checkpoint = b;
        vr.split = "val";
        data::LoadOptions lo;
        lo.seed = 3;
        CHECK(embed(vr).labels.to_vector<int64_t>() == data::load_dataset(sklearn_digits(), lo).val.labels.to_vector<int64_t>());
    }
    // A class folder: each row's file and each label's class name are written beside the features
    // (rows come split by split, and folder "10" is label 0 of the sorted names).
    {
        test::TempDir tmp;
        const std::string folder = tmp.file("folder");
        for (int i = 0; i < 5; ++i)
            for (const char* c : {"10", "2"})
                tmp.write(std::string("folder/") + c + "/" + std::to_string(i) + ".png",
                          test::png_bytes(8, 8, 1, test::pattern(8, 8, 1, i + 7 * (c[0] == '2'))));
        BackboneRequest fr = r;
        fr.checkpoint = b;
        fr.data = folder;
        fr.split = "all";
        const Embedding e = embed(fr);
        CHECK(e.classes == std::vector<std::string>{"10", "2"});
        REQUIRE(e.names.size() == 10);
        const std::vector<int64_t> l = e.labels.to_vector<int64_t>();
        for (size_t i = 0; i < 10; ++i) CHECK(e.names[i].substr(0, e.names[i].find('/')) == e.classes[size_t(l[i])]);
        // By default normalised with the checkpoint's pretraining statistics (the digits'), so an
        // image's features do not depend on the other images embedded with it; it used each
        // dataset's own.
        BackboneRequest pinned = fr;
        pinned.mean = m.mean;
        pinned.std = m.std;
        CHECK(embed(pinned).features.to_vector<float>() == e.features.to_vector<float>());
    }
    // Given statistics are per channel of the stored images (digits: one).
    r.mean = {0.5, 0.5};
    CHECK_THROWS_WITH(embed(r), Catch::Contains("--mean has 2 values, but") && Catch::Contains("has 1 channel"));
    r.mean = {128};
    CHECK_THROWS_WITH(embed(r), Catch::Contains("--mean 128: statistics are in [0, 1] units"));
    r.mean = {0.5};
    r.std = {0.2, 0.2};
    CHECK_THROWS_WITH(embed(r), Catch::Contains("--std has 2 values"));
    r.std.clear();
    CHECK(embed(r).features.shape() == Shape{359, 64});
    r.mean = {0.5, 0.4, 0.3};  // this model takes 1 channel, as do the digits: three values fit neither
    CHECK_THROWS_WITH(embed(r), Catch::Contains("and the model takes 1"));
    r.mean.clear();

    // The CLI writes a float32 .npy that numpy reads: magic, version 1.0, '<f4', C order, the shape.
    const std::string npy = dir + "/feats.npy";
    REQUIRE(run_hpt("embed --device cpu --checkpoint '" + b + "' --data '" + sklearn_digits() + "' --split test --out '" + npy + "'") == 0);
    const std::string bytes = io::read_file(npy);
    REQUIRE(bytes.size() > 10);
    CHECK(bytes.substr(0, 6) == "\x93NUMPY");
    CHECK(bytes[6] == 1);
    const std::string header = bytes.substr(10, size_t(uint8_t(bytes[8]) | uint8_t(bytes[9]) << 8));
    CHECK_THAT(header, Catch::Contains("'descr': '<f4'") && Catch::Contains("'fortran_order': False") &&
                           Catch::Contains("'shape': (359, 64)"));
    CHECK(bytes.size() == 10 + header.size() + 359 * 64 * 4);
    std::vector<float> stored(359 * 64);
    std::memcpy(stored.data(), bytes.data() + 10 + header.size(), stored.size() * 4);
    CHECK(stored == f_full.to_vector<float>());
    // Labels as int64 [N] (float32 [N, 1] before: labels above 2^24 came back changed).
    const std::string lbytes = io::read_file(npy + ".labels.npy");
    const std::string lheader = lbytes.substr(10, size_t(uint8_t(lbytes[8]) | uint8_t(lbytes[9]) << 8));
    CHECK_THAT(lheader, Catch::Contains("'descr': '<i8'") && Catch::Contains("'shape': (359,)"));
    REQUIRE(lbytes.size() == 10 + lheader.size() + 359 * 8);
    std::vector<int64_t> stored_labels(359);
    std::memcpy(stored_labels.data(), lbytes.data() + 10 + lheader.size(), stored_labels.size() * 8);
    CHECK(stored_labels == labels.to_vector<int64_t>());
    CHECK(run_hpt("embed --checkpoint '" + dir + "/run.toml' --data '" + sklearn_digits() + "' --out '" + npy + "'") == 1);
    fs::remove_all(dir);
}

TEST_CASE("missing data and incompatible init checkpoints are clear errors", "[hpt]") {
    const std::string dir = tmp_dir("bad");
    RunConfig cfg = tiny_run(dir, 2);
    RunConfig missing = cfg;
    missing.stages[0].data = dir + "/nowhere";
    CHECK_THROWS_WITH(run_pipeline(missing, false), Catch::Contains(dir + "/nowhere"));
    // A missing path in the last stage stops the run before the first stage trains.
    missing = cfg;
    missing.stages[1].eval_data = {dir + "/elsewhere"};
    CHECK_THROWS_WITH(run_pipeline(missing, false), Catch::Contains("stage 'b': eval_data " + dir + "/elsewhere"));
    CHECK_FALSE(fs::exists(dir + "/out/metrics.jsonl"));

    cfg.stages.resize(1);
    run_pipeline(cfg, false);  // a width-1/8 backbone
    RunConfig wider = cfg;
    wider.run.out = dir + "/out2";
    wider.model.width = 0.25;
    wider.stages[0].init = dir + "/out/a/final.safetensors";
    CHECK_THROWS_WITH(run_pipeline(wider, false),
                      Catch::Contains("checkpoint does not fit the model") && Catch::Contains("'encoder_q.conv1.weight'"));
    fs::remove_all(dir);
}

TEST_CASE("a write that fails (a full disk) is an error and leaves the old file intact", "[hpt][io]") {
    const std::string dir = tmp_dir("full");
    fs::create_directories(dir);
    io::write_file_atomic(dir + "/f.bin", "old contents");
    // RLIMIT_FSIZE makes writes past the limit fail with EFBIG, as a full disk fails with ENOSPC.
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit old{};
    getrlimit(RLIMIT_FSIZE, &old);
    rlimit small = old;
    small.rlim_cur = 1024;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
    std::string err;
    try {
        io::write_file_atomic(dir + "/f.bin", std::string(1 << 20, 'x'));
    } catch (const Error& e) {
        err = e.what();
    }
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK_THAT(err, Catch::Contains("writing " + dir + "/f.bin failed") && Catch::Contains("untouched"));
    CHECK(io::read_file(dir + "/f.bin") == "old contents");
    int leftovers = 0;
    for (auto& e : fs::directory_iterator(dir)) leftovers += e.path().filename() != "f.bin";
    CHECK(leftovers == 0);
    fs::remove_all(dir);
}

TEST_CASE("a finished stage resumed under a changed iteration count reports what ran", "[hpt]") {
    // The summary said 'target 9 (done)' for a stage that had run 4 steps.
    const std::string dir = tmp_dir("resumechanged");
    RunConfig cfg = tiny_run(dir, 4, 1);
    run_pipeline(cfg, false);
    cfg.stages[0].iterations = 9;
    test::StderrCapture err;
    const RunResult r = run_pipeline(cfg, true);
    CHECK_THAT(err.text(), Catch::Contains("finished with 4 iterations") && Catch::Contains("to train them again"));
    REQUIRE(r.stages.size() == 1);
    CHECK(r.stages[0].skipped);
    CHECK(r.stages[0].iterations == 4);
    // Its time is the one recorded when it ran (the summary said "(done)"), marked as such.
    CHECK(r.stages[0].seconds > 0);
    const std::string table = summary_table(r);
    CHECK_THAT(table, Catch::Contains(format_duration(r.stages[0].seconds) + "*") &&
                          Catch::Contains("finished before this resume"));
    // The config the run started under stays beside the new one (it was overwritten).
    REQUIRE(fs::exists(dir + "/out/config.json.1"));
    CHECK(from_json(io::Json::parse(io::read_file(dir + "/out/config.json.1"))).stages[0].iterations == 4);
    CHECK(from_json(io::Json::parse(io::read_file(dir + "/out/config.json"))).stages[0].iterations == 9);
    CHECK_THAT(config_changes(io::Json::parse(io::read_file(dir + "/out/config.json.1")), to_json(cfg)),
               Catch::Equals(" stage.0.iterations: 4 -> 9"));
    fs::remove_all(dir);
}

TEST_CASE("--resume removes the temporaries that a killed write left behind", "[hpt]") {
    // SIGTERM during a checkpoint write leaves last.safetensors.tmp.<pid>, as large as a checkpoint.
    const std::string dir = tmp_dir("staletmp");
    RunConfig cfg = tiny_run(dir, 4, 1);
    run_pipeline(cfg, false);
    const std::string stale = dir + "/out/a/last.safetensors.tmp.12345", keep = dir + "/out/a/notes.tmp.txt";
    io::write_file_atomic(stale, "partial");
    io::write_file_atomic(keep, "a user's file");
    run_pipeline(cfg, true);
    CHECK_FALSE(fs::exists(stale));
    CHECK(fs::exists(keep));  // not a temporary's name
    fs::remove_all(dir);
}

TEST_CASE("a stage that is not evaluated has a row in the summaries, with the reason", "[hpt]") {
    // Before, such a stage was missing from summary.txt, and summary.json was [] for a run of them.
    const std::string dir = tmp_dir("noeval");
    RunConfig cfg = tiny_run(dir, 2, 1);
    cfg.eval.knn = cfg.eval.linear_probe = false;
    const RunResult r = run_pipeline(cfg, false);
    REQUIRE(r.stages.size() == 1);
    CHECK(r.stages[0].evals.empty());
    CHECK_THAT(r.stages[0].not_evaluated, Catch::Contains("eval.knn and eval.linear_probe are both off"));
    CHECK_THAT(summary_table(r), Catch::Contains("(not evaluated: see below)") &&
                                     Catch::Contains("stage 'a' not evaluated: eval.knn and eval.linear_probe"));
    const io::Json js = io::Json::parse(io::read_file(dir + "/out/summary.json"), "summary.json");
    REQUIRE(js.as_array().size() == 1);
    CHECK(js.as_array()[0].at("stage").as_string() == "a");
    CHECK_THAT(js.as_array()[0].at("not_evaluated").as_string(), Catch::Contains("both off"));
    // Resumed once finished, the stage says that no evaluation was recorded.
    CHECK_THAT(run_pipeline(cfg, true).stages[0].not_evaluated, Catch::Contains("no evaluation is recorded"));
    fs::remove_all(dir);
}

TEST_CASE("resume refuses a stage whose parent changed, and a stage already past its iterations", "[hpt][resume]") {
    // Both wrote a manifest that did not describe the weights: the new parent's hash on a stage
    // trained from the old one, and 30 steps for a stage that had trained 40.
    const std::string dir = tmp_dir("parent");
    RunConfig cfg = tiny_run(dir, 2);
    run_pipeline(cfg, false);
    {  // The same parent named otherwise (a moved run, --out spelled otherwise) is the same parent.
        RunConfig respelled = cfg;
        respelled.run.out = dir + "/./out";
        test::StderrCapture err;
        CHECK_NOTHROW(run_pipeline(respelled, true));
        CHECK_THAT(err.text(), Catch::Contains("(same sha256)"));
    }
    RunConfig other = tiny_run(dir + "/other", 3, 1);
    run_pipeline(other, false);
    fs::copy_file(dir + "/other/out/a/final.safetensors", dir + "/out/a/final.safetensors",
                  fs::copy_options::overwrite_existing);  // stage a "retrained": b no longer descends from it
    CHECK_THROWS_WITH(run_pipeline(cfg, true), Catch::Contains("stage 'b': ") && Catch::Contains("was trained from") &&
                                                   Catch::Contains("remove " + dir + "/out/b"));

    const std::string cfg_path = write_config(dir + "/k", 10);
    CHECK(run_hpt("train --config '" + cfg_path + "'", "HPT_DEBUG_KILL_AFTER_STEP=6") == 128 + SIGKILL);
    const std::string run_config = io::read_file(dir + "/k/out/config.json");
    CHECK(run_hpt("train --config '" + cfg_path + "' --resume --set stage.a.iterations=3") == 1);
    // The refused resume left the run's config as it was (it wrote the refused one, and kept the
    // old as config.json.1, so the next resume warned of a change that never ran).
    CHECK(io::read_file(dir + "/k/out/config.json") == run_config);
    CHECK_FALSE(fs::exists(dir + "/k/out/config.json.1"));
    RunConfig k = load_config(cfg_path);
    k.stages[0].iterations = 3;
    CHECK_THROWS_WITH(run_pipeline(k, true), Catch::Contains("has trained 4 steps, more than the 3 iterations"));
    fs::remove_all(dir);
}

TEST_CASE("every stage's data is checked before the first stage trains", "[hpt]") {
    // A last stage whose batch its data could not fill failed after the stages before it had run.
    const std::string dir = tmp_dir("preflight");
    RunConfig cfg = tiny_run(dir, 2);
    cfg.stages[1].batch = 4096;
    cfg.moco.queue = 4096;
    cfg.stages[0].batch = 16;
    CHECK_THROWS_WITH(run_pipeline(cfg, false), Catch::Contains("stage 'b': ") && Catch::Contains("fewer than the batch of 4096"));
    CHECK(losses(dir + "/out/metrics.jsonl").empty());
    CHECK_FALSE(fs::exists(dir + "/out/a"));
    cfg.stages[1].batch = 16;
    cfg.stages[1].init = dir + "/run.toml";  // exists, but no checkpoint
    CHECK_THROWS(run_pipeline(cfg, false));
    CHECK(losses(dir + "/out/metrics.jsonl").empty());
    fs::remove_all(dir);
}

TEST_CASE("a resumed stage keeps its training time and warns when its data now has other images", "[hpt][resume]") {
    // The summary counted only the time after the resume, and a dataset that had changed under the
    // run (images added, or a version holding some out as test) was trained on silently.
    const std::string dir = tmp_dir("resumeimages");
    const std::string csv = io::read_file(pipeline::sklearn_digits());
    const std::vector<uint8_t> bytes = data::gunzip(reinterpret_cast<const uint8_t*>(csv.data()), csv.size(), "digits", 1 << 24);
    const std::string all(bytes.begin(), bytes.end());
    const auto first_lines = [&](int lines) {
        size_t end = 0;
        for (int i = 0; i < lines; ++i) end = all.find('\n', end) + 1;
        io::write_file_atomic(dir + "/digits.csv", all.substr(0, end));
    };
    first_lines(1000);
    std::string cfg_text = io::read_file(write_config(dir, 10));
    cfg_text.replace(cfg_text.find(pipeline::sklearn_digits()), pipeline::sklearn_digits().size(), dir + "/digits.csv");
    io::write_file_atomic(dir + "/run.toml", cfg_text);
    CHECK(run_hpt("train --config '" + dir + "/run.toml'", "HPT_DEBUG_KILL_AFTER_STEP=6") == 128 + SIGKILL);
    const Manifest at4 = read_checkpoint(dir + "/out/a/last.safetensors").manifest;
    CHECK(at4.step == 4);
    CHECK(at4.images > 0);
    CHECK(at4.images < 1000);  // the carved val and test splits are not pretrained on
    CHECK(at4.seconds > 0);

    first_lines(900);
    RunConfig cfg = load_config(dir + "/run.toml");
    cfg.stages.resize(1);
    test::StderrCapture err;
    const RunResult r = run_pipeline(cfg, true);
    const std::string warned = err.text();
    const Manifest done = read_checkpoint(dir + "/out/a/final.safetensors").manifest;
    CHECK_THAT(warned, Catch::Contains("was trained on " + std::to_string(at4.images) + " images of " + dir + "/digits.csv, which now gives " +
                                          std::to_string(done.images)));
    CHECK(done.images < at4.images);
    CHECK(done.seconds > at4.seconds);
    CHECK(r.stages.at(0).seconds == done.seconds);  // the final manifest's time included the evaluation
    fs::remove_all(dir);
}
