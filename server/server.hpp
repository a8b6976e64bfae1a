// okserve start-up and shutdown: descriptor limit, listener, answers, pool, signals;
// then runs the chosen dispatch mode and prints the summary. Main thread only.
#pragma once

#include "server/config.hpp"

namespace okserve {

// Runs the server until SIGINT/SIGTERM has drained it. Returns the process exit code.
// Throws SysError (exit 1) for start-up failures and UsageError (exit 2) for a bad answer
// specification.
int serve(const Config& config);

}  // namespace okserve
