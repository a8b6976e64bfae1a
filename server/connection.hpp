// okserve::Connection: the HTTP/1.1 connection state machine every mode runs on. Bytes,
// EOF, timeouts and drain notices go in; answer bytes and the next thing to do come out.
// It owns no socket, thread, atomic or clock: the mode around it does the I/O and the waiting.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <memory>

#include "server/access_log.hpp"
#include "server/config.hpp"
#include "server/http/parser.hpp"
#include "server/http/response.hpp"
#include "server/rate_limiter.hpp"
#include "server/stats.hpp"

namespace okserve {

// What every connection of one server reads and never writes.
// The rate limiter and the access log are shared by every thread (each is made for it);
// both are absent unless configured.
struct ConnectionRules {
    explicit ConnectionRules(const Config& cfg);  // builds the answers: may throw UsageError
    const Config& config;
    std::unique_ptr<RateLimiter> limiter;  // --rate-limit
    // Events carry nanoseconds (two more clock reads a turn) only when something uses them:
    // request latencies, read by --admin, and the rate limiter.
    bool fine_time = false;
    http::Responses responses;
    AccessLog* access_log = nullptr;       // --access-log; owned by whoever runs the server
};

// Protocol, in one transition function (on()), after memcached's drive_machine:
//
//   idle ──first byte──▶ head ──head with body──▶ body
//    ▲                    │                        │
//    └── answer written ◀─┴──── answers queued ────┘──▶ writing ──(close framing)──▶ closing
//                                                                                     │
//   closed ◀── EOF / error / timeout / done ◀── lingering ◀── error or unread input ──┘
//
// The caller loops: take the Action, do it, report what happened as an Event, and stop
// when the action needs the socket to become ready (read/write would block) or is close.
class Connection {
public:
    enum class State : std::uint8_t {
        idle,       // between requests (or before the first): no byte of a request yet
        head,       // a request head is arriving
        body,       // a request body is arriving (and being discarded)
        writing,    // answers to send; then read again
        closing,    // the last answer to send; then close or linger
        lingering,  // write side shut; input is read and discarded until EOF or the deadline
        closed,     // finished: outcome() says how
    };

    // What the caller does next.
    enum class Action : std::uint8_t {
        read,    // receive, then report input or eof (or wait for readability / the deadline)
        write,   // send output(), then report sent (or wait for writability / the deadline)
        linger,  // shut the write side down now, then go on as for read
        close,   // close the socket and count outcome()
    };

    struct Event {
        enum class Kind : std::uint8_t {
            input,    // bytes arrived
            eof,      // the peer closed its side
            sent,     // `count` bytes of output() were taken by the kernel
            timeout,  // the clock passed deadline() (an early one is ignored)
            drain,    // the server is shutting down
            evict,    // room is needed: an idle keep-alive connection closes (others ignore it)
            failed,   // the socket failed: `client_gone` for a reset or broken pipe
        };
        Kind kind;
        std::int64_t now_ms;
        std::string_view bytes{};
        std::size_t count = 0;
        bool client_gone = false;
        // The same instant in nanoseconds, read when the bytes arrived (input) or left
        // (sent): request latencies and the rate limiter use it. 0: derive it from now_ms.
        std::int64_t now_ns = 0;
    };

    // A slice of output to send, in order.
    struct Slice {
        const char* data;
        std::size_t size;
    };
    static constexpr std::size_t max_slices = 64;

    explicit Connection(const ConnectionRules& rules) noexcept;

    // A new connection: waits for its first request. Resets everything left from before.
    Action open(std::int64_t now_ms) noexcept;
    // A new connection refused for lack of room: answers 503 and closes cleanly.
    Action reject(std::int64_t now_ms) noexcept;

    // The transition function: one event in, the next action out.
    Action on(const Event& e) noexcept;

    // The unsent output as slices (at most max), oldest first; returns how many.
    std::size_t output(Slice* out, std::size_t max) const noexcept;
    std::size_t output_bytes() const noexcept { return out_total_ - out_sent_; }

    // Which timeout the deadline is: each kind has one duration, so a mode can keep one
    // sorted list per kind (server/timers.hpp). Meaningless once closed.
    enum class Timer : std::uint8_t { header, keepalive, body, write, linger, count };
    Timer timer() const noexcept;

    const ConnectionRules& rules() const noexcept { return *rules_; }
    State state() const noexcept { return state_; }
    Action action() const noexcept { return action_; }  // the last one returned
    std::int64_t deadline_ms() const noexcept { return deadline_ms_; }
    Outcome outcome() const noexcept { return outcome_; }
    std::uint64_t answers() const noexcept { return answers_; }  // on this connection so far
    std::uint64_t limited() const noexcept { return limited_; }  // of which 429 (--rate-limit)
    // Answers (and 429s among them) since the last call: what the caller's counters lack.
    struct Counts {
        std::uint64_t answers = 0;
        std::uint64_t limited = 0;
    };
    Counts take_counts() noexcept {
        const Counts c{answers_ - answers_reported_, limited_ - limited_reported_};
        answers_reported_ = answers_;
        limited_reported_ = limited_;
        return c;
    }
    // Answers that were not refused by the rate limit: each is owed its --work.
    std::uint64_t served() const noexcept { return answers_ - limited_; }

    // Answers whose last byte the latest `sent` event wrote, and the sum of their
    // latencies (first byte of the request read to last byte of the answer written).
    // Zero answers after any other event, and always when rules().fine_time is off.
    struct Finished {
        std::uint64_t answers = 0;
        std::int64_t total_ns = 0;
    };
    Finished finished() const noexcept { return finished_; }

    // The client's address, for the access log (set by the mode after open()).
    void set_peer(std::string_view peer) { log_fields().peer.assign(peer); }
    // Idle between requests with nothing to send: may be closed to make room.
    bool reusable_idle() const noexcept { return state_ == State::idle && answers_ > 0; }

    // Bytes a batch of pipelined answers may reach before it is written.
    static constexpr std::size_t batch_bytes_max = 256 * 1024;
    // Bodies above this are referenced from the shared answer, never copied.
    static constexpr std::size_t inline_body_max = 16 * 1024;

private:
    Action on_input(std::string_view bytes, std::int64_t now) noexcept;
    Action on_eof(std::int64_t now) noexcept;
    Action on_sent(std::size_t n, std::int64_t now, std::int64_t now_ns) noexcept;
    Action on_timeout(std::int64_t now) noexcept;
    Action on_drain(std::int64_t now) noexcept;
    Action on_failed(bool client_gone) noexcept;

    Action parse(std::int64_t now) noexcept;
    std::size_t answer_all(std::string_view data) noexcept;
    void answer_request() noexcept;
    void fail_request(http::Status status) noexcept;
    void queue(const http::Answer& a) noexcept;
    void log(int status, const http::Answer& a) noexcept;
    Action after_output(std::int64_t now) noexcept;
    Action await_input(std::int64_t now) noexcept;
    Action start_writing(std::int64_t now) noexcept;
    Action start_lingering(std::int64_t now) noexcept;
    Action finish(Outcome o) noexcept;
    Outcome ending() const noexcept;
    void clear_output() noexcept;
    Action set(State s, Action a, std::int64_t deadline) noexcept;

    // A run of output bytes: in out_ (external == nullptr) or a shared body.
    struct Segment {
        const char* external;
        std::size_t offset;
        std::size_t size;
    };

    const ConnectionRules* rules_;
    http::RequestParser parser_;
    std::string in_;                 // received bytes not yet consumed: a partial head, or
                                     // pipelined requests left after a full batch
    std::string out_;                // answer heads and small bodies not yet sent
    std::vector<Segment> segments_;  // only when a large body is referenced
    std::size_t open_from_ = 0;      // start of out_ bytes not yet in a segment
    std::size_t out_total_ = 0;      // bytes queued since output was last empty
    std::size_t out_sent_ = 0;       // ... and sent
    std::uint64_t answers_ = 0;
    std::uint64_t limited_ = 0;
    std::uint64_t answers_reported_ = 0;  // take_counts()
    std::uint64_t limited_reported_ = 0;
    // Latency: when the latest input arrived, when the open request's first byte did, and
    // the answers queued since output was last empty (count, first start, and the sum of
    // their starts after the first).
    std::int64_t event_ns_ = 0;
    std::int64_t head_started_ns_ = 0;
    std::uint64_t batch_answers_ = 0;
    std::int64_t batch_first_ns_ = 0;
    std::int64_t batch_start_sum_ns_ = 0;
    Finished finished_{};
    // Only with an access log, so that a connection without one carries a pointer, not two
    // strings: the client's address and the line of the request answered next.
    struct LogFields {
        std::string peer;
        std::string request_line;
    };
    LogFields& log_fields() {
        if (!log_) log_ = std::make_unique<LogFields>();
        return *log_;
    }
    std::unique_ptr<LogFields> log_;
    std::int64_t deadline_ms_ = 0;
    std::int64_t request_started_ms_ = 0;
    State state_ = State::closed;
    Action action_ = Action::close;
    Outcome outcome_ = Outcome::answered;
    Outcome error_outcome_ = Outcome::errors;  // how an answered error ends the connection
    bool close_after_ = false;  // the last answer queued says Connection: close
    bool error_answered_ = false;
    bool unread_input_ = false;  // bytes followed the last request: close would reset
    bool peer_eof_ = false;      // EOF seen while output was pending
    bool draining_ = false;
};

}  // namespace okserve
