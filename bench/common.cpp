#include "bench/common.h"

#ifdef HPT_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

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

#include "engine/core/error.h"

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

namespace {

// For the peer processes started after it: glibc's malloc keeps freed memory instead of returning
// it to the kernel (mmap_max=0: no block gets an mmap of its own; trim_threshold: the top of the
// heap stays mapped), unless GLIBC_TUNABLES is already set. PyTorch's CPU tensors come from
// malloc, and glibc serves each block over 32 MiB with a fresh mmap that it unmaps when freed: a
// ResNet-18 MoCo step at batch 256 on 32x32 images then took 24.8 s instead of 6.4 s here,
// nearly all of it page faults and the kernel zeroing those pages. Our engine caches its blocks,
// as PyTorch's CUDA allocator does and as its CPU tuning guide advises (jemalloc or tcmalloc);
// with this both sides reuse memory, and the ratio compares the computation.
//
// Also, as our allocator does for blocks of 4 MiB and more, malloc asks for transparent huge pages
// (glibc 2.35+; older ones ignore the name). And on AVX-512 CPUs, PyTorch's own kernels and its
// BLAS use AVX-512 as ours do: torch 1.13 defaults ATen to AVX2, and OpenBLAS takes the kernels
// OPENBLAS_CORETYPE names (Haswell in this machine's environment, which made the peer's GEMMs
// 1.5-4x slower). A value the user set stands, and the peer's JSON field names it.
void prepare_peer_environment() {
    ::setenv("GLIBC_TUNABLES",
             "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1099511627776:glibc.malloc.hugetlb=1", 0);
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq")) {
        ::setenv("ATEN_CPU_CAPABILITY", "avx512", 0);
        ::setenv("OPENBLAS_CORETYPE", "SkylakeX", 0);
    }
}

}  // namespace

std::vector<std::string> run_peer(const std::string& script, const std::vector<std::string>& args,
                                  const std::string& stdin_text, std::string& error) {
    namespace fs = std::filesystem;
    const fs::path in = fs::temp_directory_path() / ("hpt_peer_" + std::to_string(::getpid()) + ".json");
    {
        std::ofstream f(in);
        f << stdin_text;
    }
    prepare_peer_environment();
    std::string cmd = peer_python() + " '" + script + "'";
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

std::string peer_python() {
    // Debian's interpreter (where python3-torch lives) unless HPT_PYTHON says otherwise: a pyenv or
    // venv python3 earlier on PATH usually has no torch.
    if (const char* env = std::getenv("HPT_PYTHON")) return env;
    return std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

PeerServer::PeerServer(const std::string& script, const std::vector<std::string>& args) {
    int in[2], out[2];
    if (::pipe(in) != 0 || ::pipe(out) != 0) {
        error_ = "cannot create pipes for the peer";
        return;
    }
    // Everything the child needs is made before the fork: a child forked from a process with
    // threads may only make async-signal-safe calls (no malloc) until it execs.
    prepare_peer_environment();
    std::vector<std::string> argv_s{peer_python(), script};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    argv_s.push_back("--serve");
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) {
        error_ = "cannot fork the peer";
        return;
    }
    if (pid_ == 0) {
        ::dup2(in[0], 0);
        ::dup2(out[1], 1);
        ::close(in[1]);
        ::close(out[0]);
        ::execvp(argv[0], argv.data());
        std::_Exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    to_ = ::fdopen(in[1], "w");
    from_ = ::fdopen(out[0], "r");
}

PeerServer::~PeerServer() {
    if (to_) std::fclose(to_);  // EOF ends the peer's loop
    if (from_) std::fclose(from_);
    if (pid_ > 0) {
        int st = 0;
        ::waitpid(pid_, &st, 0);
    }
}

std::map<std::string, std::string> PeerServer::request(const std::string& json_line) {
    if (!ok()) return {};
    std::fprintf(to_, "%s\n", json_line.c_str());
    std::fflush(to_);
    char* line = nullptr;
    size_t cap = 0;
    while (true) {
        const ssize_t n = ::getline(&line, &cap, from_);
        if (n <= 0) {
            std::free(line);
            error_ = "the PyTorch peer stopped (is Debian's python3-torch installed? tools/install-deps --bench)";
            return {};
        }
        if (line[0] == '{') break;
        std::cerr << "[peer] " << line;
    }
    const std::string l(line);
    std::free(line);
    return parse_flat_json(l);
}

Paired time_paired(const std::function<void()>& ours, PeerServer* peer, const std::string& request, double min_seconds,
                   int rounds, const std::function<void()>& sync) {
    Paired r;
    std::vector<double> mine, theirs;
    const double each = min_seconds / rounds;
    std::ostringstream req;
    req << request.substr(0, request.rfind('}')) << ", \"min_time\": " << each << "}";
    for (int i = 0; i < rounds; ++i) {
        const Timing t = time_it(ours, i == 0 ? 2 : 1, 3, each, 1000, sync);
        mine.push_back(t.median_ms);
        r.ours.reps += t.reps;
        r.ours.min_ms = i == 0 ? t.min_ms : std::min(r.ours.min_ms, t.min_ms);
        if (peer && peer->ok()) {
            auto f = peer->request(req.str());
            if (f.count("ms")) {
                theirs.push_back(std::stod(f["ms"]));
                r.peer_fields = f;
            }
        }
    }
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
    };
    r.ours.median_ms = median(mine);
    r.peer_ms = theirs.empty() ? std::nan("") : median(theirs);
    return r;
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

std::string gpu_name(int device) {
#ifdef HPT_WITH_CUDA
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, device) == cudaSuccess) return p.name;
#endif
    return "cuda:" + std::to_string(device);
}

bool parse_args(int argc, char** argv, const std::string& usage, CommonArgs& o,
                const ExtraArg& extra) {
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const std::function<std::string()> value = [&]() -> std::string {
            if (i + 1 >= argc) throw Error(a + " needs a value");
            return argv[++i];
        };
        // A number that does not parse names the option rather than ending in std::stoi's message.
        auto number = [&](auto convert) {
            const std::string v = value();
            try {
                size_t used = 0;
                const auto x = convert(v, &used);
                if (used == v.size()) return x;
            } catch (const std::exception&) {
            }
            throw Error(a + " " + v + " is not a number");
        };
        if (a == "--help" || a == "-h") {
            std::cout << usage;
            return false;
        }
        if (extra && extra(a, value)) continue;
        if (a == "--device") {
            o.device = value();
        } else if (a == "--threads") {
            o.threads = number([](const std::string& s, size_t* u) { return std::stoi(s, u); });
        } else if (a == "--filter") {
            o.filter = value();
        } else if (a == "--min-time") {
            o.min_seconds = number([](const std::string& s, size_t* u) { return std::stod(s, u); });
        } else if (a == "--out") {
            o.out = value();
        } else if (a == "--no-peer") {
            o.peer = false;
        } else {
            throw Error("unknown option '" + a + "' (see --help)");
        }
    }
    return true;
}

}  // namespace hpt::bench
