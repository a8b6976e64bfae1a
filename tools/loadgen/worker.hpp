// okserve::loadgen worker: owns one thread's connections, its epoll set, its send schedule and
// its Totals. It knows HTTP only through ResponseChecker, and nothing of flags or output.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string_view>
#include <sys/socket.h>
#include <vector>

#include "tools/loadgen/hdr_histogram.hpp"
#include "tools/loadgen/response_checker.hpp"
#include "tools/loadgen/stats.hpp"

namespace okserve::loadgen {

class IntervalLog;

struct WorkerConfig {
    sockaddr_storage address{};
    socklen_t address_len = 0;
    std::string_view request;      // one request's head (the whole request when there is no body)
    std::string_view body;         // --body-file, mapped once and shared by every worker
    std::string_view target;       // "127.0.0.1:8080", for error messages
    int connections = 1;
    int pipeline = 1;              // requests in flight per connection
    bool close = false;            // one request per connection, the server closes
    bool head = false;             // HEAD: responses have no body
    double rate = 0;               // this worker's share of -R, requests/second; 0 = closed loop
    std::int64_t timeout_ns = 2'000'000'000;
    std::int64_t start_ns = 0;     // on the now_ns() clock
    std::int64_t deadline_ns = INT64_MAX;
    RequestBudget* budget = nullptr;          // -n; null when the duration alone ends the run
    const std::atomic<bool>* stop = nullptr;  // set by SIGINT
    IntervalLog* hlog = nullptr;              // --hlog; this worker is number `index` in it
    int index = 0;
};

// Created and run on one thread; read totals() after join. progress() may be read from any
// thread while it runs.
class Worker {
public:
    explicit Worker(const WorkerConfig& config);  // allocates everything the run will use
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    void run() noexcept;
    const Totals& totals() const noexcept { return totals_; }
    std::int64_t finished_ns() const noexcept { return finished_ns_; }
    std::uint64_t progress_responses() const noexcept { return live_responses_.load(std::memory_order_relaxed); }
    std::uint64_t progress_errors() const noexcept { return live_errors_.load(std::memory_order_relaxed); }

private:
    enum class State : std::uint8_t { closed, waiting, connecting, open, draining };
    struct Connection {
        int fd = -1;
        std::uint32_t generation = 0;
        State state = State::closed;
        bool in_ready_list = false;
        std::uint32_t in_flight = 0;     // requests sent or queued, not yet answered
        std::uint32_t ring_head = 0;     // oldest in-flight start time in starts_
        std::uint64_t unsent = 0;        // queued request bytes not yet written
        std::uint64_t written = 0;       // request bytes written on this connection
        std::int64_t since_ns = 0;       // connect started, or waiting for the oldest answer since
        std::int64_t retry_ns = 0;       // state waiting: reconnect at this time
        ResponseChecker checker;
    };

    void start_connection(Connection& c, std::int64_t now) noexcept;
    std::uint32_t claim(std::uint32_t want) noexcept;
    void push_ready(Connection& c) noexcept;
    void on_event(std::uint64_t data, std::uint32_t events) noexcept;
    void on_connected(Connection& c) noexcept;
    void on_readable(Connection& c, std::uint32_t events) noexcept;
    bool consume(Connection& c, const char* data, std::size_t len, std::int64_t now) noexcept;
    void on_response(Connection& c, std::int64_t now) noexcept;
    void on_eof(Connection& c, std::int64_t now) noexcept;
    void send_requests(Connection& c, std::uint32_t count, std::int64_t start, std::int64_t now) noexcept;
    bool flush(Connection& c) noexcept;
    void refill(Connection& c, std::int64_t now) noexcept;
    void fail(Connection& c, ErrorKind kind, std::int64_t now) noexcept;
    // Keeps the first error of each kind as one line; printf-style, errno text via errno_text().
    void note(ErrorKind kind, std::int64_t now, const char* format, ...) noexcept __attribute__((format(printf, 4, 5)));
    void note_errno(ErrorKind kind, std::int64_t now, const char* what, int error) noexcept;
    ssize_t send_with_body(Connection& c) noexcept;
    void finish_connection(Connection& c, std::int64_t now) noexcept;
    void close_fd(Connection& c) noexcept;
    void schedule_open_loop(std::int64_t now) noexcept;
    void sweep(std::int64_t now) noexcept;
    bool done(std::int64_t now) const noexcept;
    std::int64_t next_wake(std::int64_t now) const noexcept;
    void publish() noexcept;
    void roll_log(std::int64_t now, bool last) noexcept;

    WorkerConfig config_;
    int epoll_fd_ = -1;
    std::vector<Connection> connections_;
    std::vector<std::int64_t> starts_;       // pipeline slots per connection: when each request began
    std::vector<char> requests_;             // no body: pipeline + 1 copies of the request, written from any offset
    std::size_t request_len_ = 0;            // head + body
    std::vector<char> read_buffer_;          // shared by all connections: the checker keeps no bytes
    std::vector<std::uint32_t> ready_;       // open loop: connections that can take one more request
    std::int64_t interval_ns_ = 0;           // open loop
    std::int64_t next_due_ns_ = 0;           // open loop: intended start of the next request
    std::int64_t next_sweep_ns_ = 0;
    std::int64_t finished_ns_ = 0;
    Totals totals_;
    std::optional<HdrHistogram> log_interval_;  // --hlog: this interval's latencies, in us
    std::int64_t log_interval_index_ = 0;
    alignas(64) std::atomic<std::uint64_t> live_responses_{0};
    std::atomic<std::uint64_t> live_errors_{0};
};

}  // namespace okserve::loadgen
