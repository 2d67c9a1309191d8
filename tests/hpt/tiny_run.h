// Helpers of the tests that run whole pipelines (in-process or as hpt_run): a scratch folder, the
// logged losses of a run, and hpt_run as a child process.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>

#include "engine/io/json.h"
#include "hpt/example.h"

namespace hpt::test {

// A fresh, empty folder under the system's temp folder, unique per process.
inline std::string tmp_dir(const std::string& name) {
    const std::filesystem::path p =
        std::filesystem::temp_directory_path() / ("hpt_test_" + name + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(p);
    std::filesystem::create_directories(p);
    return p.string();
}

// A tiny two-stage run on the 8x8 digits (Debian python3-sklearn), seconds on a CPU: `a` from
// random init, `b` HPT-BN from a's backbone. Writes dir/run.toml (output dir/out) and returns its path.
inline std::string write_config(const std::string& dir, int64_t iterations, const std::string& device = "cpu") {
    const std::string digits = pipeline::sklearn_digits();
    std::filesystem::create_directories(dir);
    std::ofstream f(dir + "/run.toml");
    f << "[run]\nseed = 3\ndevice = \"" << device << "\"\ncheckpoint_every = 4\nlog_every = 1\nout = \"" << dir
      << "/out\"\n"
      << "[model]\nwidth = 0.125\nproj_dim = 16\n[moco]\nqueue = 64\nbn_groups = 2\n"
      << "[eval]\nlinear_probe = false\nknn_k = 5\nmax_train = 300\n"
      << "[[stage]]\nname = \"a\"\ndata = \"" << digits << "\"\ninit = \"random\"\niterations = " << iterations
      << "\nbatch = 16\nimage_size = 8\n"
      << "[[stage]]\nname = \"b\"\ndata = \"" << digits << "\"\niterations = " << iterations
      << "\nbatch = 16\nimage_size = 8\ntrainable = \"bn\"\n";
    return dir + "/run.toml";
}

// (stage, step) -> the logged loss, as the text it was logged with (bit-exact comparisons).
inline std::map<std::pair<std::string, int64_t>, std::string> losses(const std::string& metrics) {
    std::map<std::pair<std::string, int64_t>, std::string> m;
    std::ifstream in(metrics);
    std::string line;
    while (std::getline(in, line)) {
        const io::Json j = io::Json::parse(line, metrics);
        if (j.at("event").as_string() != "step") continue;
        m[{j.at("stage").as_string(), j.at("step").as_int()}] = io::Json::number(j.at("loss").as_double()).dump();
    }
    return m;
}

#ifdef HPT_RUN_PATH
// hpt_run with `args` (and `env` assignments before it); its exit status, 128 + signal if killed.
inline int run_hpt(const std::string& args, const std::string& env = "") {
    const std::string cmd = env + " '" HPT_RUN_PATH "' " + args + " > /dev/null 2>&1";
    const int rc = std::system(cmd.c_str());
    if (WIFSIGNALED(rc)) return 128 + WTERMSIG(rc);
    return WEXITSTATUS(rc);
}

// hpt_run's exit status (as run_hpt's) and what it printed on stdout.
inline std::pair<int, std::string> run_hpt_output(const std::string& args) {
    const std::string cmd = "'" HPT_RUN_PATH "' " + args + " 2>/dev/null";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return {-1, ""};
    std::string out;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    const int rc = ::pclose(p);
    return {WIFSIGNALED(rc) ? 128 + WTERMSIG(rc) : WEXITSTATUS(rc), out};
}
#endif

}  // namespace hpt::test
