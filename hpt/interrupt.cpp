#include "hpt/interrupt.h"

#include <unistd.h>

#include <csignal>
#include <utility>

namespace hpt::pipeline {

namespace {

volatile std::sig_atomic_t g_signal = 0;
struct sigaction g_old_int, g_old_term;

extern "C" void on_stop_signal(int sig) {
    g_signal = sig;
    // SA_RESETHAND has put the default action back: a second signal ends the process.
    static const char msg[] =
        "\nhpt: stopping at the end of this step and saving a checkpoint there (again to stop at once)\n";
    const ssize_t w = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
}

}  // namespace

InterruptScope::InterruptScope() {
    g_signal = 0;
    struct sigaction sa = {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND | SA_RESTART;
    for (auto [sig, old] : {std::pair<int, struct sigaction*>{SIGINT, &g_old_int}, {SIGTERM, &g_old_term}}) {
        ::sigaction(sig, nullptr, old);
        if (old->sa_handler != SIG_IGN) ::sigaction(sig, &sa, nullptr);  // nohup and `cmd &` ignore SIGINT: keep that
    }
}

InterruptScope::~InterruptScope() {
    ::sigaction(SIGINT, &g_old_int, nullptr);
    ::sigaction(SIGTERM, &g_old_term, nullptr);
}

int interrupt_signal() { return g_signal; }

}  // namespace hpt::pipeline
