#include "hpt/interrupt.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <string>
#include <utility>

namespace hpt::pipeline {

namespace {

// Written by a handler that may run on any thread (the loader's, OpenMP's, MPI's).
std::atomic<int> g_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "the handler needs a lock-free flag");
int g_depth = 0;
struct sigaction g_old_int, g_old_term, g_old_pipe;

extern "C" void on_stop_signal(int sig) {
    const int saved = errno;
    g_signal.store(sig);
    // The default action back for both signals: the next one, of either kind, ends the process.
    struct sigaction dfl = {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(SIGINT, &dfl, nullptr);
    ::sigaction(SIGTERM, &dfl, nullptr);
    // The handler cannot know the phase: during an evaluation there is no step to end, and the
    // message said there was (a user saw nothing stop for 20 s and pressed again).
    static const char msg[] =
        "\nhpt: stopping: training stops at the end of its step and saves a checkpoint there; an evaluation "
        "running now finishes first (again to stop at once; --resume continues)\n";
    const ssize_t w = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    errno = saved;
}

}  // namespace

InterruptScope::InterruptScope() {
    if (g_depth++ > 0) return;
    g_signal.store(0);
    struct sigaction sa = {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (auto [sig, old] : {std::pair<int, struct sigaction*>{SIGINT, &g_old_int}, {SIGTERM, &g_old_term}}) {
        ::sigaction(sig, nullptr, old);
        if (old->sa_handler != SIG_IGN) ::sigaction(sig, &sa, nullptr);  // nohup and `cmd &` ignore SIGINT: keep that
    }
    struct sigaction ign = {};
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    ::sigaction(SIGPIPE, &ign, &g_old_pipe);
}

InterruptScope::~InterruptScope() {
    if (--g_depth > 0) return;
    ::sigaction(SIGINT, &g_old_int, nullptr);
    ::sigaction(SIGTERM, &g_old_term, nullptr);
    ::sigaction(SIGPIPE, &g_old_pipe, nullptr);
}

int interrupt_signal() { return g_signal.load(); }

void stop_if_interrupted(const std::string& where) {
    if (const int sig = interrupt_signal()) throw Interrupted(where + " (signal " + std::to_string(sig) + "); continue with --resume", sig);
}

}  // namespace hpt::pipeline
