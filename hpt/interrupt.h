// Ctrl-C (SIGINT) and SIGTERM during `hpt_run train` and the built-in example: the first asks the
// run to stop at the end of the current step with a checkpoint there, so nothing trained is lost
// and --resume continues from that step; the second (either signal) ends the process at once, as
// a kill would (losing the steps since the last checkpoint). Outside a run the signals keep their
// default. Under mpirun, send the signal to the rank processes: Open MPI's mpirun passes Ctrl-C on
// as SIGTERM, then kills the ranks that have not ended, before a slow step could.
#pragma once
#include <string>

#include "engine/core/error.h"

namespace hpt::pipeline {

// What a run throws when it stopped on request; hpt_run then dies of that signal, as a shell
// expects of an interrupted command (a loop of runs stops).
class Interrupted : public Error {
public:
    Interrupted(const std::string& what, int signal) : Error(what), signal(signal) {}
    int signal;
};

// Installs the handlers for its lifetime and restores the previous ones after; SIGPIPE is
// ignored meanwhile, so that a `| tee` that Ctrl-C ended first cannot kill the run before its
// checkpoint. Scopes nest (the example's two runs inside its own): only the outermost installs,
// and a request stays until the outermost ends.
class InterruptScope {
public:
    InterruptScope();
    ~InterruptScope();
    InterruptScope(const InterruptScope&) = delete;
    InterruptScope& operator=(const InterruptScope&) = delete;
};

// The signal that asked the run to stop, 0 when none has.
int interrupt_signal();

// Throws Interrupted when a stop was asked for; `where` says what is left undone.
void stop_if_interrupted(const std::string& where);

}  // namespace hpt::pipeline
