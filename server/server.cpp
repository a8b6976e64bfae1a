#include "server/server.hpp"

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <sys/socket.h>
#include <unistd.h>

#include "server/access_log.hpp"
#include "server/admin/admin_server.hpp"
#include "server/connection.hpp"
#include "server/modes/mode.hpp"
#include "server/signals.hpp"
#include "server/sys/cpus.hpp"
#include "server/sys/net.hpp"

namespace okserve {

namespace {

std::size_t default_max_connections(std::uint64_t nofile, std::size_t workers) {
    // Keep descriptors for the listeners, epoll sets, eventfds, stdio and a margin.
    const std::uint64_t reserve = 32 + 4 * workers;
    const std::uint64_t n = nofile > reserve + 16 ? nofile - reserve : 16;
    return static_cast<std::size_t>(std::min<std::uint64_t>(n, 1u << 20));
}

// One worker per CPU this process may use; a thread per connection needs a cap, not a
// thread per CPU; a queue has exactly one consumer.
std::size_t default_workers(Mode mode) {
    if (mode == Mode::queue) return 1;
    if (mode == Mode::thread) return thread_mode_default_workers;
    return usable_cpus();
}

// Reactor: one SO_REUSEPORT listener per loop (the kernel spreads connections by hash),
// or a single listener all loops share (--listeners shared). README.md "Which mode when"
// has the measurements behind the default.
std::vector<Listener> open_listeners(const Config& cfg) {
    std::vector<Listener> out;
    const bool per_loop = cfg.mode == Mode::reactor && cfg.reuse_port && cfg.workers > 1;
    const ListenOptions options{per_loop, cfg.defer_accept};
    out.push_back(open_listener(cfg.host, cfg.port, cfg.backlog, options));
    for (std::size_t i = 1; per_loop && i < cfg.workers; ++i) {
        out.push_back(open_listener(cfg.host, out[0].port, cfg.backlog, options));
    }
    return out;
}

std::unique_ptr<RunningMode> make_mode(Config& cfg, const ModeSetup& setup) {
    switch (cfg.mode) {
        case Mode::thread: return make_thread_mode(setup);
        case Mode::queue: return make_queue_mode(setup);
        case Mode::pool: return make_pool_mode(setup);
        case Mode::reactor: return make_reactor_mode(setup);
        case Mode::uring: {
            std::string why;
            if (auto m = make_uring_mode(setup, why)) return m;
            std::fprintf(stderr, "okserve: io_uring unavailable (%s); running --mode reactor\n", why.c_str());
            cfg.mode = Mode::reactor;
            return make_reactor_mode(setup);
        }
    }
    return nullptr;
}

std::string instance_name(const Config& cfg, std::uint16_t port) {
    if (!cfg.instance_name.empty()) return cfg.instance_name;
    char host[256] = "okserve";
    ::gethostname(host, sizeof host - 1);
    return std::string(host) + ":" + std::to_string(port);
}

}  // namespace

int serve(const Config& cfg_in) {
    Config cfg = cfg_in;
    if (cfg.workers == 0) cfg.workers = default_workers(cfg.mode);
    const NofileLimit nofile = raise_nofile_limit();
    if (cfg.max_connections == 0) cfg.max_connections = default_max_connections(nofile.after, cfg.workers);

    ServerStats stats;
    // The admin listener first: a port in use stops start-up before the main one serves.
    std::unique_ptr<admin::AdminServer> admin;
    if (cfg.admin) admin = std::make_unique<admin::AdminServer>(cfg, stats);
    std::vector<Listener> listeners = open_listeners(cfg);
    if (cfg.instance_header) cfg.response.headers.emplace_back(instance_header_name, instance_name(cfg, listeners[0].port));
    ConnectionRules rules(cfg);  // builds the answers: may throw UsageError
    Signals signals;  // before any thread starts: they inherit the blocked mask
    std::unique_ptr<AccessLog> access_log;
    if (!cfg.access_log.empty()) access_log = std::make_unique<AccessLog>(cfg.access_log);
    rules.access_log = access_log.get();
    const ModeSetup setup{cfg, rules, stats, listeners};
    std::unique_ptr<RunningMode> mode = make_mode(cfg, setup);

    std::printf("okserve: mode=%s listen=%s %s backlog=%d nofile=%llu%s max-connections=%zu\n", to_string(cfg.mode),
                listeners[0].address.c_str(), mode->describe().c_str(), listeners[0].backlog,
                static_cast<unsigned long long>(nofile.after),
                nofile.after != nofile.before ? (" (raised from " + std::to_string(nofile.before) + ")").c_str() : "",
                cfg.max_connections);
    if (admin) {
        std::printf("okserve: admin=http://%s/ (metrics, stats.json, events, health, ready)\n", admin->address().c_str());
    }
    std::fflush(stdout);
    mode->start();
    if (admin) {
        const std::string& a = listeners[0].address;
        // The load tester aims at the main listener; a wildcard address is reached on loopback.
        std::string target = a;
        if (a.rfind("0.0.0.0:", 0) == 0) target = "127.0.0.1:" + std::to_string(listeners[0].port);
        else if (a.rfind("[::]:", 0) == 0) target = "[::1]:" + std::to_string(listeners[0].port);
        RunningMode* m = mode.get();
        admin->start([m] { return m->gauges(); }, "http://" + target + "/", access_log.get());
    }

    // The main thread only watches signals: it never touches a client. SIGUSR1 prints the
    // live figures, SIGHUP reopens the access log (after logrotate moved it), at any time.
    const auto on_other_signal = [&](SignalKind s) {
        if (s == SignalKind::report) {
            std::printf("okserve: live: %s\n", stats.summary().c_str());
            std::fflush(stdout);
        }
        if (s == SignalKind::reopen && access_log) access_log->reopen();
    };
    for (;;) {
        const SignalKind s = signals.wait(-1);
        if (s == SignalKind::drain) break;
        on_other_signal(s);
    }
    // A load balancer polling /ready sees 503 now; --drain-delay gives it time to stop
    // sending before the listeners close. A second signal cuts the delay short.
    if (admin) admin->set_not_ready();
    if (cfg.drain_delay.count() > 0) {
        std::printf("okserve: draining in %lld ms (--drain-delay); /ready says 503\n", static_cast<long long>(cfg.drain_delay.count()));
        std::fflush(stdout);
        const auto until = RunningMode::Clock::now() + cfg.drain_delay;
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - RunningMode::Clock::now()).count();
            if (left <= 0) break;
            const SignalKind s = signals.wait(static_cast<int>(left));
            if (s == SignalKind::drain) break;
            on_other_signal(s);
        }
    }
    // Stop taking connections: new ones are refused at once, not left in the backlog.
    mode->begin_drain();
    for (const Listener& l : listeners) ::shutdown(l.fd.get(), SHUT_RDWR);
    const auto deadline = RunningMode::Clock::now() + cfg.drain_timeout;
    bool drained = false;
    while (!drained && RunningMode::Clock::now() < deadline) {
        drained = mode->wait_until(std::min(deadline, RunningMode::Clock::now() + std::chrono::milliseconds(50)));
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
    if (!drained) mode->cut_off();
    if (admin) admin->stop();
    access_log.reset();  // flushes what is buffered
    std::printf("okserve: shutdown: %s\n", stats.summary().c_str());
    std::fflush(stdout);
    return 0;
}

}  // namespace okserve
