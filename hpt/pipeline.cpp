#include "hpt/pipeline.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <iostream>
#include <sstream>

#include "engine/dist/comm.h"
#include "engine/io/atomic_file.h"
#include "engine/ops/registry.h"
#include "hpt/interrupt.h"
#include "hpt/progress.h"

namespace hpt::pipeline {

namespace fs = std::filesystem;

Device resolve_device(const std::string& spec) {
    if (spec == "auto") {
        const bool usable = cuda_device_count() > 0 && supports(OpId::conv2d, DeviceType::cuda);
        return usable ? Device::cuda(0) : Device::cpu();
    }
    const Device d = Device::parse(spec);
    if (d.is_cuda()) {
        HPT_CHECK(cuda_device_count() > d.index, "device ", spec, " requested but ", cuda_device_count(),
                  " CUDA device(s) are visible", cuda_device_count() == 0 ? " (use --device cpu)" : "");
    }
    return d;
}

std::string config_changes(const io::Json& before, const io::Json& after) {
    std::map<std::string, std::string> a, b;
    std::function<void(const io::Json&, const std::string&, std::map<std::string, std::string>&)> flat =
        [&](const io::Json& j, const std::string& key, std::map<std::string, std::string>& into) {
            if (j.is_object()) {
                for (const auto& [k, v] : j.as_object()) flat(v, key.empty() ? k : key + "." + k, into);
            } else if (j.is_array() && key == "stage") {
                for (size_t i = 0; i < j.as_array().size(); ++i) flat(j.as_array()[i], key + "." + std::to_string(i), into);
            } else {
                into[key] = j.dump();
            }
        };
    flat(before, "", a);
    flat(after, "", b);
    for (const auto& [k, v] : b) a.emplace(k, "(none)");
    std::string out;
    for (const auto& [k, v] : a) {
        const auto it = b.find(k);
        const std::string now = it == b.end() ? "(none)" : it->second;
        if (now != v) out += " " + k + ": " + v + " -> " + now + ";";
    }
    if (!out.empty()) out.pop_back();
    return out;
}

namespace {

// Every path of every stage is checked before anything runs, so that a typo in the last stage
// does not surface after hours of the first.
void check_paths(const RunConfig& cfg) {
    const auto exists = [](const std::string& path, const std::string& what, const std::string& key) {
        std::error_code ec;
        if (fs::exists(path, ec)) return;
        const std::string rel = fs::path(path).is_relative()
                                    ? ", relative paths are read from the current folder " + fs::current_path(ec).string()
                                    : "";
        HPT_THROW(what, " ", path, " does not exist (", key, rel, ")");
    };
    for (const StageConfig& st : cfg.stages) {
        const std::string w = "stage '" + st.name + "':", k = "stage." + st.name;
        exists(st.data, w + " data", k + ".data");
        for (const std::string& d : st.eval_data) exists(d, w + " eval_data", k + ".eval_data");
        if (st.init != "random" && st.init != "previous") exists(st.init, w + " init checkpoint", k + ".init");
    }
}

// A run killed while it wrote a file (SIGTERM, SIGKILL: no destructor runs) leaves its temporary
// behind: "<name>.tmp.<pid>" (io::AtomicFile), as large as a checkpoint. A resumed run removes
// those of the run folder and its stages' folders.
void remove_stale_temporaries(const std::string& out, const RunConfig& cfg) {
    std::vector<fs::path> dirs{out};
    for (const StageConfig& st : cfg.stages) dirs.push_back(fs::path(out) / st.name);
    for (const fs::path& d : dirs) {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(d, ec)) {
            const std::string name = e.path().filename().string();
            const size_t at = name.rfind(".tmp.");
            if (at == std::string::npos || at + 5 == name.size() || !e.is_regular_file(ec)) continue;
            if (!std::all_of(name.begin() + long(at + 5), name.end(), [](char c) { return c >= '0' && c <= '9'; }))
                continue;
            fs::remove(e.path(), ec);
            if (!ec) std::cerr << "hpt: removed " << e.path().string() << ", left by an interrupted write\n";
        }
    }
}

}  // namespace

RunResult run_pipeline(const RunConfig& cfg, bool resume) {
    const InterruptScope interrupts;
    validate(cfg);
    check_paths(cfg);
    RunResult res;
    res.out_dir = cfg.run.out;
    const Device device = dist::device_for_rank(resolve_device(cfg.run.device), dist::detect_launch());
    const std::unique_ptr<dist::Comm> comm = dist::make_comm({cfg.dist.backend, cfg.dist.timeout_s}, device);
    res.device = device.str();
    res.rank = comm->rank();
    res.world = comm->world();
    const bool lead = comm->rank() == 0;
    fs::create_directories(cfg.run.out);
    const std::string cfg_path = cfg.run.out + "/config.json";
    const std::string cfg_json = to_json(cfg).dump();
    // Compared by value: a run written before JSON numbers took their shortest form differs in text only.
    const std::string changes =
        lead && resume && fs::exists(cfg_path) ? config_changes(io::Json::parse(io::read_file(cfg_path), cfg_path), to_json(cfg)) : "";
    if (lead && resume && !fs::exists(cfg.run.out + "/metrics.jsonl"))  // a mistyped --out would start over unnoticed
        std::cerr << "hpt: nothing to resume in " << cfg.run.out << " (no metrics.jsonl): starting the run\n";
    if (!resume && fs::exists(cfg.run.out + "/metrics.jsonl"))
        HPT_THROW(cfg.run.out, " already holds a run (metrics.jsonl); pass --resume to continue it or choose another --out");
    for (size_t i = 0; i < cfg.stages.size(); ++i) check_stage_data(cfg, i, comm->world(), lead);
    comm->barrier();  // every rank has looked at the folder before rank 0 writes into it
    if (lead && resume) remove_stale_temporaries(cfg.run.out, cfg);
    // Written once the first stage's checks pass (a checkpoint that refuses the new config, say fewer
    // iterations than it trained or another queue size, stops the run before it): a run that stops
    // before training keeps its config.json as it was, and no copy.
    bool config_written = false;
    const auto write_config = [&] {
        if (!lead || config_written) return;
        config_written = true;
        if (!changes.empty()) {
            // The run goes on under the new config; the old one is kept beside it, and the warning
            // names what changed (each stage's manifest holds the config it ran under).
            std::string kept = cfg_path + ".1";
            for (int k = 2; fs::exists(kept); ++k) kept = cfg_path + "." + std::to_string(k);
            fs::copy_file(cfg_path, kept);
            std::cerr << "warning: resuming with a config that differs from the run's (kept as " << kept << "):"
                      << changes << "\n";
        }
        io::write_file_atomic(cfg_path, cfg_json + "\n");
    };
    if (lead) {
        std::cerr << "hpt: run '" << cfg.run.name << "' on " << device.str() << ", " << cfg.stages.size()
                  << " stage(s), output in " << cfg.run.out;
        if (comm->world() > 1)
            std::cerr << ", " << comm->world() << " ranks (" << comm->backend() << "), global batch split evenly";
        std::cerr << "\n";
    }

    for (size_t i = 0; i < cfg.stages.size(); ++i) {
        const StageConfig& st = cfg.stages[i];
        // A signal during the previous stage's evaluation: that stage is complete, stop before this
        // one. Several ranks agree on stopping inside a step instead (run_stage).
        if (i > 0 && comm->world() == 1) stop_if_interrupted("stopped before stage '" + st.name + "'");
        StageRun r{&cfg, i, device, cfg.run.out, "", resume, comm.get(), write_config};
        if (st.init == "previous") {
            r.init_path = res.stages.back().final_checkpoint;
        } else if (st.init != "random") {
            HPT_CHECK(fs::exists(st.init), "stage '", st.name, "': init checkpoint ", st.init, " does not exist");
            r.init_path = st.init;
        }
        res.stages.push_back(run_stage(r));
    }
    if (!lead) return res;
    const std::string table = summary_table(res);
    io::write_file_atomic(cfg.run.out + "/summary.txt", table);
    io::Json js = io::Json::array();
    for (const StageOutcome& s : res.stages) {
        if (s.evals.empty())
            js.push_back(io::Json::object({{"stage", io::Json::string(s.name)},
                                           {"iterations", io::Json::integer(s.iterations)},
                                           {"not_evaluated", io::Json::string(s.not_evaluated)},
                                           {"seconds", io::Json::number(s.seconds)}}));
        for (const StageEval& e : s.evals) {
            io::Json o = io::Json::object({{"stage", io::Json::string(s.name)},
                                           {"iterations", io::Json::integer(s.iterations)},
                                           {"data", io::Json::string(e.data)},
                                           {"seconds", io::Json::number(s.seconds)}});
            put_accuracies(o, e.result);
            js.push_back(o);
        }
    }
    io::write_file_atomic(cfg.run.out + "/summary.json", js.dump() + "\n");
    return res;
}

std::string summary_table(const RunResult& r) {
    std::ostringstream os;
    char line[512];
    const auto row = [&](const char* name, const std::string& iterations, const std::string& time, const std::string& data,
                         const std::string& probe, const std::string& knn) {
        std::snprintf(line, sizeof line, "%-14s %10s %9s  %-42s %10s %8s\n", name, iterations.c_str(), time.c_str(),
                      data.c_str(), probe.c_str(), knn.c_str());
        os << line;
    };
    // A stage finished before this resume shows the training time its checkpoint recorded, marked.
    const auto time_of = [](const StageOutcome& s) {
        if (!s.skipped) return format_duration(s.seconds);
        return (s.seconds > 0 ? format_duration(s.seconds) : std::string("(done)")) + "*";
    };
    row("stage", "iterations", "time", "evaluated on", "probe acc", "kNN acc");
    bool any_skipped = false;
    for (const StageOutcome& s : r.stages) {
        any_skipped = any_skipped || s.skipped;
        const std::string its = std::to_string(s.iterations);
        for (const StageEval& e : s.evals) {
            std::string data = e.data;
            if (data.size() > 42) data = "..." + data.substr(data.size() - 39);
            row(s.name.c_str(), its, time_of(s), data, percent(e.result.probe_test_acc), percent(e.result.knn_test_acc));
        }
        if (s.evals.empty()) row(s.name.c_str(), its, time_of(s), "(not evaluated: see below)", "-", "-");
    }
    if (any_skipped)
        os << "* finished before this resume: the training time its checkpoint recorded ((done) for checkpoints "
              "written before hpt recorded it)\n";
    for (const StageOutcome& s : r.stages)
        if (s.evals.empty()) os << "stage '" << s.name << "' not evaluated: " << s.not_evaluated << "\n";
    return os.str();
}

}  // namespace hpt::pipeline
