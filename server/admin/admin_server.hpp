// okserve admin listener (--admin ADDR:PORT): a second listener, served by a thread of its
// own with its own epoll set, so that a saturated main listener (every worker busy, every
// queue full) cannot starve it. It reads the per-thread tallies (summed when read) and the
// mode's gauges; it never touches a client of the main listener.
//   GET /metrics      Prometheus text format 0.0.4
//   GET /stats.json   one JSON object: totals, gauges, the last interval's rates and latency
//   GET /events       server-sent events: one JSON snapshot per --admin-interval
//   GET /health       200 while the process runs
//   GET /ready        200 while accepting, 503 once a drain began
//   GET /             the live page (charts and a load tester)
//   GET /load         the load tester's state; POST /load/start?..., POST /load/stop
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "server/access_log.hpp"
#include "server/config.hpp"
#include "server/modes/mode.hpp"
#include "server/stats.hpp"
#include "server/sys/net.hpp"

namespace okserve::admin {

class AdminServer {
public:
    // Opens the admin listener (throws SysError: port in use, ...). Serving starts at start().
    AdminServer(const Config& cfg, ServerStats& stats);
    ~AdminServer();  // stops the thread if it runs
    AdminServer(const AdminServer&) = delete;
    AdminServer& operator=(const AdminServer&) = delete;

    const std::string& address() const noexcept { return listener_.address; }

    // gauges: the running mode's; main_url: the main listener, for the load tester.
    void start(std::function<Gauges()> gauges, std::string main_url, const AccessLog* access_log);
    // From then on /ready answers 503.
    void set_not_ready() noexcept { ready_.store(false, std::memory_order_relaxed); }
    // Stops the thread (and a load run it started); idempotent.
    void stop();

private:
    class Loop;
    const Config& config_;
    ServerStats& stats_;
    Listener listener_;
    std::atomic<bool> ready_{true};
    std::unique_ptr<Loop> loop_;
    std::thread thread_;
};

}  // namespace okserve::admin
