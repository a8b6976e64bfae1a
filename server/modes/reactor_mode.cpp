// okserve --mode reactor: one EventLoop per worker thread, each owning its connections
// from accept to close. No hand-off between threads, so no context switch per request.
// How new connections spread over the loops is the listener's business (see README.md,
// "Which mode when": SO_REUSEPORT against one listener shared with EPOLLEXCLUSIVE).
#include "server/modes/loops_mode.hpp"

namespace okserve {

std::unique_ptr<RunningMode> make_reactor_mode(const ModeSetup& setup) {
    return std::make_unique<LoopsMode<EventLoop>>(setup, "listeners=");
}

}  // namespace okserve
