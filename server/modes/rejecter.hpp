// okserve rejecter: an EventLoop on a thread of its own that answers 503 (and lingers) for
// connections no place was found for, so the accepting thread never writes to a client.
// Every mode with an overflow policy has one. Knows nothing of how places are counted.
#pragma once

#include <thread>

#include "pool/wait_group.hpp"

#include "server/event_loop.hpp"
#include "server/modes/mode.hpp"

namespace okserve {

class Rejecter {
public:
    static constexpr std::size_t capacity = 1024;  // 503s in flight; past it a socket just closes

    explicit Rejecter(const ModeSetup& s)
        : loop_(s.rules, s.stats.new_tally(), EventLoop::Options{.max_connections = capacity}) {}
    Rejecter(const Rejecter&) = delete;
    Rejecter& operator=(const Rejecter&) = delete;

    // Runs the loop on a thread of its own, which checks out of `live` as the last thing
    // it does: waiting on `live` is how the mode knows the loop has stopped (no join, so a
    // thread that ends early is never left unjoined).
    void start(pool::WaitGroup& live) {
        live.add(1);
        std::thread([this, &live] {
            loop_.run();
            live.done();
        }).detach();
    }
    EventLoop& loop() noexcept { return loop_; }
    void begin_drain() { loop_.begin_drain(); }
    void cut_off() { loop_.cut_off(); }

private:
    EventLoop loop_;
};

}  // namespace okserve
