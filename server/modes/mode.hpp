// okserve modes: how connections are scheduled onto threads (--mode). Every mode runs the
// same Connection through the same socket driver; a mode owns only how a connection is
// woken, which thread runs it, and its timers. docs/tour.md follows a request through each.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "server/config.hpp"
#include "server/connection.hpp"
#include "server/stats.hpp"
#include "server/sys/net.hpp"

namespace okserve {

// What start-up gives every mode. The config has workers and max_connections resolved.
struct ModeSetup {
    const Config& config;
    const ConnectionRules& rules;
    ServerStats& stats;
    std::vector<Listener>& listeners;  // one, or one per worker (reactor with SO_REUSEPORT)
};

// What a mode holds right now, for /metrics and the live page. A mode without a queue
// (thread, reactor, uring) reports a depth and capacity of 0.
struct Gauges {
    std::size_t queue_depth = 0;     // turns the executor holds: waiting + running
    std::size_t queue_capacity = 0;  // pool: workers + queue; queue: its slots
    std::size_t workers = 0;         // threads that serve clients (loops, pool workers, ...)
    std::size_t workers_busy = 0;    // ... of which doing something now
};

class RunningMode {
public:
    using Clock = std::chrono::steady_clock;
    virtual ~RunningMode() = default;
    // Starts the mode's threads: serving begins.
    virtual void start() = 0;
    // Once, from the main thread: stop accepting; idle connections close, busy ones finish.
    virtual void begin_drain() = 0;
    // True once every connection has closed and every thread of the mode has stopped.
    virtual bool wait_until(Clock::time_point deadline) = 0;
    // After a missed deadline: close what is still open (counted timed out), stop every
    // thread, and return once they have stopped.
    virtual void cut_off() = 0;
    // Any thread, any time while the mode runs.
    virtual Gauges gauges() const = 0;
    // For the start-up line, after "mode=NAME": "workers=2 queue=66 (2+64)".
    virtual std::string describe() const = 0;
};

std::unique_ptr<RunningMode> make_thread_mode(const ModeSetup& setup);
std::unique_ptr<RunningMode> make_queue_mode(const ModeSetup& setup);
std::unique_ptr<RunningMode> make_pool_mode(const ModeSetup& setup);
std::unique_ptr<RunningMode> make_reactor_mode(const ModeSetup& setup);
// io_uring: nullptr with `why` set when the kernel (or a seccomp filter) refuses it, or
// when okserve was built without liburing.
std::unique_ptr<RunningMode> make_uring_mode(const ModeSetup& setup, std::string& why);

}  // namespace okserve
