// Ctrl-C (SIGINT) and SIGTERM during `hpt_run train` and the built-in example: the first asks the
// run to stop at the end of the current step with a checkpoint there, so nothing trained is lost
// and --resume continues from that step; the second ends the process at once, as a kill would
// (losing the steps since the last checkpoint). Outside a run the signals keep their default.
#pragma once
#include <string>

#include "engine/core/error.h"

namespace hpt::pipeline {

// What a run throws when it stopped on request; hpt_run exits with 128 + signal.
class Interrupted : public Error {
public:
    Interrupted(const std::string& what, int signal) : Error(what), signal(signal) {}
    int signal;
};

// Installs the two handlers for its lifetime (the run), restoring the previous ones after.
class InterruptScope {
public:
    InterruptScope();
    ~InterruptScope();
    InterruptScope(const InterruptScope&) = delete;
    InterruptScope& operator=(const InterruptScope&) = delete;
};

// The signal that asked the run to stop, 0 when none has.
int interrupt_signal();

}  // namespace hpt::pipeline
