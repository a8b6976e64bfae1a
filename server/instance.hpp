// okserve::Instance: one running server, everything serve() and the library share: the
// listeners (admin first), the answers, the counters, the access log and the mode. It
// installs no signal handling and prints nothing (but the one line saying io_uring is
// unavailable, when --mode uring falls back to the reactor): the binary (server.cpp) watches signals
// and prints; the library (server/library.cpp) offers start and stop to its caller.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "server/access_log.hpp"
#include "server/admin/admin_server.hpp"
#include "server/config.hpp"
#include "server/connection.hpp"
#include "server/modes/mode.hpp"
#include "server/stats.hpp"
#include "server/sys/net.hpp"

namespace okserve {

class Instance {
public:
    using Clock = std::chrono::steady_clock;

    // Resolves the defaults (workers, max-connections), opens the admin listener and then
    // the main one(s), builds the answers and the mode. Nothing is served until start().
    // Throws UsageError (a bad answer specification) or SysError (a port in use, ...).
    explicit Instance(const Config& cfg);
    ~Instance();  // stops what still runs, at once
    Instance(const Instance&) = delete;
    Instance& operator=(const Instance&) = delete;

    void start();

    // The drain, in steps (the binary runs --drain-delay between the first two):
    void set_not_ready() noexcept;               // /ready says 503 from now on
    void begin_drain();                          // stop accepting; idle connections close
    bool wait_until(Clock::time_point deadline);  // true once every connection ended
    void cut_off();                              // close what is still open (counted timed out)
    void finish();                               // stop the admin listener, flush the access log

    // The whole drain for a caller without signals: returns true when every connection
    // finished within `timeout` (else the rest were cut off). The instance is stopped after.
    bool stop(std::chrono::milliseconds timeout);
    // Everything closes now; open connections are counted timed out.
    void stop_now();

    const Config& config() const noexcept { return cfg_; }
    const ServerStats& stats() const noexcept { return stats_; }
    std::uint16_t port() const noexcept { return listeners_[0].port; }
    const std::string& address() const noexcept { return listeners_[0].address; }
    AccessLog* access_log() noexcept { return access_log_.get(); }
    std::string admin_address() const { return admin_ ? admin_->address() : std::string(); }
    // "okserve: mode=pool listen=... max-connections=N" and, with --admin, the admin line.
    std::string startup_lines() const;

private:
    Config cfg_;
    NofileLimit nofile_;
    ServerStats stats_;
    std::unique_ptr<admin::AdminServer> admin_;
    std::vector<Listener> listeners_;
    std::unique_ptr<ConnectionRules> rules_;
    std::unique_ptr<AccessLog> access_log_;
    std::unique_ptr<RunningMode> mode_;
    enum class Phase { built, running, draining, stopped } phase_ = Phase::built;
};

}  // namespace okserve
