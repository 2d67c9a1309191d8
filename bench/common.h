// What every benchmark shares: timing (warm-up, repetitions, median), machine/run metadata, JSON
// lines, and running the PyTorch peer script of the same benchmark in the same process tree.
#pragma once
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace hpt::bench {

struct Timing {
    double median_ms = 0, min_ms = 0, max_ms = 0;
    int reps = 0;
};

// Runs fn `warmup` times, then repeatedly until `min_reps` runs and `min_seconds` have passed
// (at most max_reps); returns the median. `sync` (e.g. a device synchronise) ends each rep.
Timing time_it(const std::function<void()>& fn, int warmup = 2, int min_reps = 5, double min_seconds = 0.5,
               int max_reps = 1000, const std::function<void()>& sync = {});

// A JSON object built field by field, printed on one line.
class JsonLine {
public:
    JsonLine& str(const std::string& k, const std::string& v);
    JsonLine& num(const std::string& k, double v);  // NaN/inf print as null
    JsonLine& integer(const std::string& k, long long v);
    JsonLine& raw(const std::string& k, const std::string& json);
    std::string line() const { return "{" + body_ + "}"; }

private:
    void key(const std::string& k);
    std::string body_;
};

std::string json_escape(const std::string& s);
std::string git_sha();      // at configure time, "-dirty" when the tree had changes
std::string cpu_model();    // from /proc/cpuinfo
std::string timestamp_utc();

// Parses the flat JSON objects the peer scripts print (string and number values only).
std::map<std::string, std::string> parse_flat_json(const std::string& line);

// Runs `python3 <script> <args>` with `stdin_text` on its stdin and returns its stdout lines that
// start with '{'. Returns an empty vector, with `error` set, when Python or the script fails.
std::vector<std::string> run_peer(const std::string& script, const std::vector<std::string>& args,
                                  const std::string& stdin_text, std::string& error);

// Peers (run_peer, PeerServer) run with glibc's malloc keeping freed memory (GLIBC_TUNABLES,
// unless already set; see keep_peer_malloc_memory in common.cpp), and the JSON lines they print
// name that setting.

// A PyTorch peer kept running for the whole benchmark (`python3 script args --serve`): one JSON
// request per line on its stdin, one JSON result line per request on its stdout. Lets a bench
// alternate our timing and the peer's shape by shape, so that a machine whose speed drifts (a
// shared VM, thermal limits) does not bias the ratio the way "all of ours, then all of theirs" does.
class PeerServer {
public:
    PeerServer(const std::string& script, const std::vector<std::string>& args);
    ~PeerServer();
    PeerServer(const PeerServer&) = delete;
    PeerServer& operator=(const PeerServer&) = delete;
    bool ok() const { return error_.empty(); }
    const std::string& error() const { return error_; }
    // The result's fields; empty (and error() set) when the peer failed.
    std::map<std::string, std::string> request(const std::string& json_line);

private:
    int pid_ = -1;
    FILE* to_ = nullptr;
    FILE* from_ = nullptr;
    std::string error_;
};

struct Paired {
    Timing ours;
    double peer_ms = 0;  // NaN when the peer failed
    std::map<std::string, std::string> peer_fields;
};

// `rounds` rounds of: ours for min_seconds/rounds, then the peer for as long. Each side's time is
// the median of its round medians. `request` is the peer's JSON request without "min_time".
Paired time_paired(const std::function<void()>& ours, PeerServer* peer, const std::string& request, double min_seconds,
                   int rounds = 3, const std::function<void()>& sync = {});

// The Python interpreter peers run under: $HPT_PYTHON, else Debian's /usr/bin/python3.
std::string peer_python();

// Where tools/ lives (the source tree), for peer scripts.
std::string source_dir();

// Appends lines to a file (creating folders), and echoes them to stdout.
class Output {
public:
    explicit Output(const std::string& path);
    void emit(const std::string& line);

private:
    std::string path_;
};

// The options every benchmark takes, parsed in one place:
//   --device D  --threads N  --filter PATTERN  --min-time S  --out FILE  --no-peer  --help
// `extra` sees every other option first: it returns true when it took the option (reading its
// value through the given function); anything left is an error.
struct CommonArgs {
    std::string device = "cpu";
    std::string filter = ".*";
    std::string out;
    int threads = 0;  // 0: all cores
    double min_seconds = 1.0;
    bool peer = true;
};
using ExtraArg = std::function<bool(const std::string& flag, const std::function<std::string()>& value)>;
// Returns false when --help printed `usage` (the caller exits 0).
bool parse_args(int argc, char** argv, const std::string& usage, CommonArgs& o,
                const ExtraArg& extra = {});

// The GPU's marketing name ("NVIDIA H100 80GB HBM3"), for the JSON lines' device field.
std::string gpu_name(int device);

}  // namespace hpt::bench
