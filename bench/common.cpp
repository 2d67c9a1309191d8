#include "bench/common.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <unistd.h>
#include <sys/wait.h>

namespace hpt::bench {

Timing time_it(const std::function<void()>& fn, int warmup, int min_reps, double min_seconds, int max_reps,
               const std::function<void()>& sync) {
    using clock = std::chrono::steady_clock;
    for (int i = 0; i < warmup; ++i) fn();
    if (sync) sync();
    std::vector<double> ms;
    const auto start = clock::now();
    while (int(ms.size()) < max_reps) {
        const auto t0 = clock::now();
        fn();
        if (sync) sync();
        ms.push_back(std::chrono::duration<double, std::milli>(clock::now() - t0).count());
        const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
        if (int(ms.size()) >= min_reps && elapsed >= min_seconds) break;
    }
    Timing t;
    t.reps = int(ms.size());
    std::sort(ms.begin(), ms.end());
    t.median_ms = ms.size() % 2 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
    t.min_ms = ms.front();
    t.max_ms = ms.back();
    return t;
}

std::string json_escape(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (c == '"' || c == '\\') {
            o += '\\';
            o += c;
        } else if (c == '\n') {
            o += "\\n";
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            o += buf;
        } else {
            o += c;
        }
    }
    return o;
}

void JsonLine::key(const std::string& k) {
    if (!body_.empty()) body_ += ", ";
    body_ += "\"" + json_escape(k) + "\": ";
}
JsonLine& JsonLine::str(const std::string& k, const std::string& v) {
    key(k);
    body_ += "\"" + json_escape(v) + "\"";
    return *this;
}
JsonLine& JsonLine::num(const std::string& k, double v) {
    key(k);
    if (!std::isfinite(v)) {
        body_ += "null";
    } else {
        std::ostringstream os;
        os.precision(6);
        os << v;
        body_ += os.str();
    }
    return *this;
}
JsonLine& JsonLine::integer(const std::string& k, long long v) {
    key(k);
    body_ += std::to_string(v);
    return *this;
}
JsonLine& JsonLine::raw(const std::string& k, const std::string& json) {
    key(k);
    body_ += json;
    return *this;
}

std::string git_sha() {
    // Asked at run time (results are often recorded after commits newer than the configure step).
    const std::string dir = HPT_SOURCE_DIR;
    FILE* p = ::popen(("git -C '" + dir + "' rev-parse --short HEAD 2>/dev/null && git -C '" + dir +
                       "' status --porcelain --untracked-files=no 2>/dev/null | head -1")
                          .c_str(),
                      "r");
    if (!p) return HPT_GIT_SHA;
    char buf[256];
    std::string sha, dirty;
    if (std::fgets(buf, sizeof buf, p)) sha = buf;
    if (std::fgets(buf, sizeof buf, p)) dirty = buf;
    ::pclose(p);
    while (!sha.empty() && (sha.back() == '\n' || sha.back() == ' ')) sha.pop_back();
    if (sha.empty()) return HPT_GIT_SHA;
    return dirty.empty() ? sha : sha + "-dirty";
}

std::string cpu_model() {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("model name", 0) == 0) {
            const auto p = line.find(':');
            return p == std::string::npos ? line : line.substr(p + 2);
        }
    }
    return "unknown";
}

std::string timestamp_utc() {
    const std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return buf;
}

std::map<std::string, std::string> parse_flat_json(const std::string& line) {
    std::map<std::string, std::string> m;
    size_t i = 0;
    auto skip = [&] {
        while (i < line.size() && (line[i] == ' ' || line[i] == ',' || line[i] == '{' || line[i] == '}')) ++i;
    };
    auto read_string = [&] {
        std::string s;
        ++i;  // opening quote
        while (i < line.size() && line[i] != '"') {
            if (line[i] == '\\' && i + 1 < line.size()) ++i;
            s += line[i++];
        }
        ++i;
        return s;
    };
    while (true) {
        skip();
        if (i >= line.size() || line[i] != '"') break;
        const std::string k = read_string();
        while (i < line.size() && (line[i] == ' ' || line[i] == ':')) ++i;
        if (i < line.size() && line[i] == '"') {
            m[k] = read_string();
        } else {
            size_t j = i;
            int depth = 0;
            while (j < line.size() && (depth > 0 || (line[j] != ',' && line[j] != '}'))) {
                if (line[j] == '[') ++depth;
                if (line[j] == ']') --depth;
                ++j;
            }
            m[k] = line.substr(i, j - i);
            i = j;
        }
    }
    return m;
}

std::vector<std::string> run_peer(const std::string& script, const std::vector<std::string>& args,
                                  const std::string& stdin_text, std::string& error) {
    namespace fs = std::filesystem;
    const fs::path in = fs::temp_directory_path() / ("hpt_peer_" + std::to_string(::getpid()) + ".json");
    {
        std::ofstream f(in);
        f << stdin_text;
    }
    // Debian's interpreter (where python3-torch lives) unless HPT_PYTHON says otherwise: a
    // pyenv or venv python3 earlier on PATH usually has no torch.
    std::string py = "python3";
    if (const char* env = std::getenv("HPT_PYTHON")) {
        py = env;
    } else if (fs::exists("/usr/bin/python3")) {
        py = "/usr/bin/python3";
    }
    std::string cmd = py + " '" + script + "'";
    for (const std::string& a : args) cmd += " '" + a + "'";
    cmd += " < '" + in.string() + "'";
    std::vector<std::string> lines;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) {
        error = "cannot start python3";
        return lines;
    }
    std::array<char, 1 << 16> buf;
    std::string acc;
    while (std::fgets(buf.data(), int(buf.size()), p)) {
        acc += buf.data();
        if (!acc.empty() && acc.back() == '\n') {
            acc.pop_back();
            if (!acc.empty() && acc[0] == '{') lines.push_back(acc);
            else if (!acc.empty()) std::cerr << "[peer] " << acc << "\n";
            acc.clear();
        }
    }
    const int rc = ::pclose(p);
    fs::remove(in);
    if (rc != 0) {
        error = "peer script " + script + " exited with status " + std::to_string(WEXITSTATUS(rc)) +
                " (is Debian's python3-torch installed? tools/install-deps --bench)";
    }
    return lines;
}

std::string source_dir() { return HPT_SOURCE_DIR; }

Output::Output(const std::string& path) : path_(path) {
    if (!path_.empty()) {
        const auto parent = std::filesystem::path(path_).parent_path();
        if (!parent.empty()) std::filesystem::create_directories(parent);
        std::ofstream(path_, std::ios::trunc);
    }
}

void Output::emit(const std::string& line) {
    std::cout << line << std::endl;
    if (!path_.empty()) {
        std::ofstream f(path_, std::ios::app);
        f << line << "\n";
    }
}

}  // namespace hpt::bench
