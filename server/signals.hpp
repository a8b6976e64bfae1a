// okserve signals: SIGINT, SIGTERM, SIGQUIT, SIGHUP and SIGUSR1 are blocked in every thread
// and read from a signalfd by the main thread, so no handler ever runs mid-request.
// Knows nothing of HTTP or modes: it says which signal came, and the caller acts.
#pragma once

#include "server/sys/fd.hpp"

namespace okserve {

enum class SignalKind : unsigned char {
    none,     // the wait timed out
    drain,    // SIGTERM, SIGINT or SIGQUIT: stop accepting, finish, exit
    report,   // SIGUSR1: print the live summary and go on
    reopen,   // SIGHUP: reopen log files (logrotate's convention); otherwise harmless
};

class Signals {
public:
    // Blocks the signals in the calling thread (threads started later inherit the mask)
    // and opens the signalfd. Call before starting any thread. Throws SysError.
    Signals();
    // Waits up to timeout_ms (-1: forever) for the next signal.
    SignalKind wait(int timeout_ms) noexcept;

private:
    Fd fd_;
};

}  // namespace okserve
