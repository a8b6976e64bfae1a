// okserve::Connection: the one state machine every dispatch mode runs on: read, parse,
// answer (pipelined answers batched into one write), keep-alive, lingering close.
// Knows nothing of how it is scheduled: a mode hands it to a thread with run().
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pool/latch.hpp"
#include "server/config.hpp"
#include "server/event_loop.hpp"
#include "server/http/parser.hpp"
#include "server/http/response.hpp"
#include "server/stats.hpp"
#include "server/sys/fd.hpp"

namespace okserve {

class ConnectionTable;

// What every connection shares: read-mostly settings and the counters.
struct ServerContext {
    ServerContext(const Config& cfg, std::size_t max_connections);
    const Config& config;
    http::Responses responses;
    Poller poller;
    ServerStats stats;
    std::unique_ptr<ConnectionTable> table;
    pool::WaitGroup live;               // one count per open connection
    std::atomic<bool> draining{false};  // shutdown began: next answers say Connection: close
    std::int64_t recheck_ms;            // the shortest timeout: how long a timer may sleep
};

// Ownership. A connection has exactly one owner at a time: the dispatcher, a queued job,
// or a worker. Only the owner touches its fields. The state word hands it over:
//   busy    an owner is working on it (or a job for it is queued);
//   parked  nobody owns it; it waits in epoll (edge-triggered) for an event or a timer;
//   pending (with busy) an event arrived while it was busy: the owner must look again
//           before parking, since an edge-triggered event is not repeated;
//   closed  its descriptor is gone; stale events and timers for it are ignored.
// A parked connection is claimed by exactly one of: an event (claim_for_event) or an
// expired timer / the start of shutdown (claim_if_parked), both called by the dispatcher.
class Connection {
public:
    enum class Wake : std::uint8_t { ready, timeout, drain };

    Connection(ServerContext& ctx, std::uint32_t slot) noexcept;

    // Dispatcher, at accept: takes the socket; the caller owns the connection (busy).
    void open(Fd fd) noexcept;
    // Owner: does all the I/O it can without blocking, then parks or closes. After it
    // returns, the caller no longer owns the connection and must not touch it.
    void run(Wake why) noexcept;
    // Dispatcher, at accept under --overflow reject: answer 503 and close cleanly.
    void reject() noexcept;

    // Dispatcher: an epoll event. True when the caller now owns the connection.
    bool claim_for_event(std::uint32_t events) noexcept;
    // Dispatcher: take a parked connection (timer expiry, drain). True on success.
    bool claim_if_parked() noexcept;

    std::uint32_t slot() const noexcept { return slot_; }
    std::uint32_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }
    std::int64_t deadline_ms() const noexcept { return deadline_ms_.load(std::memory_order_acquire); }
    // epoll data: slot in the low half, generation in the high half.
    std::uint64_t token() const noexcept {
        return (static_cast<std::uint64_t>(generation()) << 32) | slot_;
    }

private:
    enum class Step : std::uint8_t { park, closed };
    enum class Io : std::uint8_t { done, blocked, failed };

    Step step() noexcept;
    Step read_and_answer() noexcept;
    bool answer_buffered(std::string_view data, bool& blocked) noexcept;
    void answer_request() noexcept;
    void queue_answer(const http::Answer& a) noexcept;
    Io write_batch() noexcept;
    Io flush_pending() noexcept;
    Step after_write() noexcept;
    Step start_linger() noexcept;
    Step linger_read() noexcept;
    void on_timeout() noexcept;
    bool park() noexcept;
    std::int64_t next_deadline() const noexcept;
    bool mid_request() const noexcept;
    Outcome end_outcome() const noexcept;
    void fail_request(http::Status status) noexcept;
    Step finish(Outcome outcome) noexcept;

    static constexpr std::uint32_t busy = 1, pending = 2, closed = 4;

    ServerContext& ctx_;
    const std::uint32_t slot_;
    std::atomic<std::uint32_t> state_{closed};
    std::atomic<std::uint32_t> generation_{0};
    std::atomic<std::int64_t> deadline_ms_{0};
    std::atomic<bool> peer_closed_{false};  // EPOLLRDHUP seen: a short read may hide EOF

    // Owner-only fields.
    Fd fd_;
    http::RequestParser parser_;
    std::string in_;   // received bytes not yet consumed (a partial head, or pipelined requests)
    std::string out_;  // answer bytes a blocked write left behind
    std::size_t out_sent_ = 0;
    std::uint64_t answers_ = 0;
    std::int64_t request_started_ms_ = 0;
    bool registered_ = false;
    bool close_after_write_ = false;  // the last answer said Connection: close
    bool error_answered_ = false;     // ... and it was an error answer
    bool lingering_ = false;
    bool unparsed_ = false;      // in_ may hold whole requests: answer them before reading
    bool unread_input_ = false;  // bytes followed a Connection: close request
    std::int64_t linger_until_ms_ = 0;
    Outcome error_outcome_ = Outcome::errors;
};

// Connection objects by slot. Slots are reused (with a new generation), never freed while
// the server runs, so a stale epoll event can always be checked against its generation.
class ConnectionTable {
public:
    ConnectionTable(ServerContext& ctx, std::size_t capacity);
    // Dispatcher only: a free connection, or nullptr when `capacity` are open.
    Connection* acquire();
    // Any owner, from the close path.
    void release(Connection* c) noexcept;
    // The connection in `slot`, or nullptr if that slot was never used.
    Connection* at(std::uint32_t slot) noexcept;
    std::size_t capacity() const noexcept { return capacity_; }
    std::size_t created() const noexcept { return created_; }

private:
    ServerContext& ctx_;
    const std::size_t capacity_;
    std::vector<std::unique_ptr<Connection>> slots_;
    std::size_t created_ = 0;  // dispatcher-only
    std::mutex free_mutex_;
    std::vector<std::uint32_t> free_;
};

}  // namespace okserve
