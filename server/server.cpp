#include "server/server.hpp"

#include <chrono>
#include <cstdio>
#include <string>

#include <unistd.h>

#include "server/instance.hpp"
#include "server/signals.hpp"

namespace okserve {

int serve(const Config& cfg) {
    Signals signals;  // before any thread starts: they inherit the blocked mask
    Instance server(cfg);
    std::fputs(server.startup_lines().c_str(), stdout);
    std::fflush(stdout);
    server.start();

    // The main thread only watches signals: it never touches a client. SIGUSR1 prints the
    // live figures, SIGHUP reopens the access log (after logrotate moved it), at any time.
    const auto on_other_signal = [&](SignalKind s) {
        if (s == SignalKind::report) {
            std::printf("okserve: live: %s\n", server.stats().summary().c_str());
            std::fflush(stdout);
        }
        if (s == SignalKind::reopen && server.access_log()) server.access_log()->reopen();
    };
    for (;;) {
        const SignalKind s = signals.wait(-1);
        if (s == SignalKind::drain) break;
        on_other_signal(s);
    }
    // A load balancer polling /ready sees 503 now; --drain-delay gives it time to stop
    // sending before the listeners close. A second signal cuts the delay short.
    server.set_not_ready();
    const Config& c = server.config();
    if (c.drain_delay.count() > 0) {
        std::printf("okserve: draining in %lld ms (--drain-delay); /ready says 503\n", static_cast<long long>(c.drain_delay.count()));
        std::fflush(stdout);
        const auto until = Instance::Clock::now() + c.drain_delay;
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Instance::Clock::now()).count();
            if (left <= 0) break;
            const SignalKind s = signals.wait(static_cast<int>(left));
            if (s == SignalKind::drain) break;
            on_other_signal(s);
        }
    }
    server.begin_drain();
    const auto deadline = Instance::Clock::now() + c.drain_timeout;
    bool drained = false;
    while (!drained && Instance::Clock::now() < deadline) {
        drained = server.wait_until(std::min(deadline, Instance::Clock::now() + std::chrono::milliseconds(50)));
        const SignalKind s = signals.wait(0);
        if (s == SignalKind::drain) {
            std::fputs("okserve: second signal: exiting now\n", stderr);
            std::fflush(stderr);
            std::fflush(stdout);
            ::_exit(1);
        }
        on_other_signal(s);
    }
    // Connections the drain timeout cuts off are counted as timed out; the summary comes
    // after every thread of the mode has stopped, so the books balance.
    if (!drained) server.cut_off();
    server.finish();
    std::printf("okserve: shutdown: %s\n", server.stats().summary().c_str());
    std::fflush(stdout);
    return 0;
}

}  // namespace okserve
