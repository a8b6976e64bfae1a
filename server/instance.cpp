#include "server/instance.hpp"

#include <algorithm>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <cerrno>
#include <stdexcept>

#include <sys/socket.h>
#include <unistd.h>

#include "server/sys/cpus.hpp"
#include "server/sys/error.hpp"

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

// systemd socket activation: the descriptors start at 3 (SD_LISTEN_FDS_START). okserve
// serves one socket; the admin listener is always its own (--admin).
Listener activated_listener(const SocketActivation& a, bool closed) {
    const long self = static_cast<long>(::getpid());
    if (a.pid != self) {
        throw std::runtime_error("LISTEN_PID=" + std::to_string(a.pid) + " names another process (this is " +
                                 std::to_string(self) + "): the sockets in LISTEN_FDS are not for okserve");
    }
    if (a.count == 0) throw std::runtime_error("LISTEN_FDS=0: socket activation passed no socket to serve");
    if (a.count > 1) {
        std::string names;
        for (const std::string& n : a.names) names += (names.empty() ? "" : ":") + n;
        throw std::runtime_error("LISTEN_FDS=" + std::to_string(a.count) + ": okserve serves one socket, " +
                                 std::to_string(a.count) + " were passed" + (names.empty() ? "" : " (" + names + ")"));
    }
    std::string origin = "systemd fd 3";
    if (!a.names.empty() && !a.names[0].empty()) origin += " '" + a.names[0] + "'";
    if (closed) throw SysError(origin, "fcntl", EBADF);
    return adopt_listener(3, origin);
}

// A socket given (--fd, systemd) or a Unix socket is one listener all loops share.
// Otherwise, reactor: one SO_REUSEPORT listener per loop (the kernel spreads connections
// by hash), or a single listener all loops share (--listeners shared). README.md "Which
// mode when" has the measurements behind the default.
std::vector<Listener> open_listeners(const Config& cfg) {
    std::vector<Listener> out;
    if (cfg.activation.given) {
        out.push_back(activated_listener(cfg.activation, cfg.given_fd_closed));
        return out;
    }
    if (cfg.listen_fd >= 0) {
        const std::string origin = "--fd " + std::to_string(cfg.listen_fd);
        if (cfg.given_fd_closed) throw SysError(origin, "fcntl", EBADF);
        out.push_back(adopt_listener(cfg.listen_fd, origin));
        return out;
    }
    if (!cfg.unix_path.empty()) {
        out.push_back(open_unix_listener(cfg.unix_path, cfg.unix_mode, cfg.backlog));
        return out;
    }
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

std::string instance_name(const Config& cfg, const Listener& l) {
    if (!cfg.instance_name.empty()) return cfg.instance_name;
    char host[256] = "okserve";
    ::gethostname(host, sizeof host - 1);
    return std::string(host) + ":" + (l.tcp() ? std::to_string(l.port) : l.address);
}

// What the start-up line says after "listen=": HOST:PORT first, so it stays parseable,
// then where a given socket came from: "127.0.0.1:8080 (systemd fd 3)".
std::string shown_listen(const Listener& l) {
    return l.inherited() ? l.address + " (" + l.origin + ")" : l.address;
}

std::string shown_backlog(const Listener& l) {
    return l.backlog < 0 ? std::string("inherited") : std::to_string(l.backlog);
}

}  // namespace

Instance::Instance(const Config& cfg_in) : cfg_(cfg_in) {
    if (cfg_.workers == 0) cfg_.workers = default_workers(cfg_.mode);
    nofile_ = raise_nofile_limit();
    if (cfg_.max_connections == 0) cfg_.max_connections = default_max_connections(nofile_.after, cfg_.workers);
    // The admin listener first: a port in use stops start-up before the main one serves.
    if (cfg_.admin) admin_ = std::make_unique<admin::AdminServer>(cfg_, stats_);
    listeners_ = open_listeners(cfg_);
    if (cfg_.instance_header) {
        cfg_.response.headers.emplace_back(instance_header_name, instance_name(cfg_, listeners_[0]));
    }
    rules_ = std::make_unique<ConnectionRules>(cfg_);  // builds the answers: may throw UsageError
    if (!cfg_.access_log.empty()) access_log_ = std::make_unique<AccessLog>(cfg_.access_log);
    rules_->access_log = access_log_.get();
    const ModeSetup setup{cfg_, *rules_, stats_, listeners_};
    mode_ = make_mode(cfg_, setup);
}

Instance::~Instance() { stop_now(); }

std::string Instance::startup_lines() const {
    char line[512];
    std::snprintf(line, sizeof line, "okserve: mode=%s listen=%s %s backlog=%s nofile=%llu%s max-connections=%zu\n",
                  to_string(cfg_.mode), shown_listen(listeners_[0]).c_str(), mode_->describe().c_str(),
                  shown_backlog(listeners_[0]).c_str(), static_cast<unsigned long long>(nofile_.after),
                  nofile_.after != nofile_.before ? (" (raised from " + std::to_string(nofile_.before) + ")").c_str() : "",
                  cfg_.max_connections);
    std::string out = line;
    if (admin_) out += "okserve: admin=http://" + admin_->address() + "/ (metrics, stats.json, events, health, ready)\n";
    return out;
}

void Instance::start() {
    if (phase_ != Phase::built) return;
    mode_->start();
    phase_ = Phase::running;
    if (admin_) {
        const std::string& a = listeners_[0].address;
        // The load tester aims at the main listener; a wildcard address is reached on loopback.
        // (A Unix socket has no http:// URL: the page's load tester reports it cannot connect.)
        std::string target = a;
        if (a.rfind("0.0.0.0:", 0) == 0) target = "127.0.0.1:" + std::to_string(listeners_[0].port);
        else if (a.rfind("[::]:", 0) == 0) target = "[::1]:" + std::to_string(listeners_[0].port);
        RunningMode* m = mode_.get();
        admin_->start([m] { return m->gauges(); }, "http://" + target + "/", access_log_.get());
    }
}

void Instance::set_not_ready() noexcept {
    if (admin_) admin_->set_not_ready();
}

void Instance::begin_drain() {
    if (phase_ != Phase::running) return;
    set_not_ready();
    // Stop taking connections: new ones are refused at once, not left in the backlog. A
    // socket given by a supervisor is left listening: it is shared with the giver, and what
    // arrives now waits in its backlog for the next instance (systemd starts one).
    mode_->begin_drain();
    for (const Listener& l : listeners_) {
        if (!l.inherited()) ::shutdown(l.fd.get(), SHUT_RDWR);
    }
    phase_ = Phase::draining;
}

bool Instance::wait_until(Clock::time_point deadline) {
    if (phase_ == Phase::built || phase_ == Phase::stopped) return true;
    return mode_->wait_until(deadline);
}

void Instance::cut_off() {
    if (phase_ == Phase::running || phase_ == Phase::draining) mode_->cut_off();
}

void Instance::finish() {
    if (phase_ == Phase::stopped) return;
    if (admin_) admin_->stop();
    for (Listener& l : listeners_) l.file.remove();
    access_log_.reset();  // flushes what is buffered
    if (rules_) rules_->access_log = nullptr;
    phase_ = Phase::stopped;
}

bool Instance::stop(std::chrono::milliseconds timeout) {
    if (phase_ == Phase::stopped) return true;
    if (phase_ == Phase::built) {
        finish();
        return true;
    }
    set_not_ready();
    if (cfg_.drain_delay.count() > 0 && phase_ == Phase::running) std::this_thread::sleep_for(cfg_.drain_delay);
    begin_drain();
    const bool drained = wait_until(Clock::now() + timeout);
    if (!drained) cut_off();
    finish();
    return drained;
}

void Instance::stop_now() {
    if (phase_ == Phase::running) begin_drain();
    if (phase_ == Phase::draining) cut_off();
    finish();
}

}  // namespace okserve
