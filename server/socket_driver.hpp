// okserve socket driver: runs a Connection over one non-blocking socket for one turn: until
// it must wait for the socket, has spent the turn's budget, or has closed. Every mode that
// uses plain sockets (thread, queue, pool, reactor) calls this; none has its own I/O loop.
#pragma once

#include <cstddef>
#include <cstdint>

#include "server/connection.hpp"
#include "server/stats.hpp"
#include "server/work.hpp"

namespace okserve {

enum class Turn : std::uint8_t {
    wait_readable,  // read would block: resume when readable (or at the deadline)
    wait_writable,  // write would block: resume when writable (or at the deadline)
    yielded,        // the budget is spent and work is left: go to the back of the line
    closed,         // the connection ended: close the socket and count outcome()
};

// Bytes read plus bytes written in one turn. A client that keeps its socket full (an
// endless upload, thousands of pipelined requests) gets this much, then others go first.
inline constexpr std::size_t turn_budget_bytes = 512 * 1024;
inline constexpr std::size_t read_chunk = 64 * 1024;

// Does `first` (an action the connection returned) and what follows, as far as the socket allows.
// peer_closed: the poller reported RDHUP/HUP, so a short read may hide an EOF (read on
// until it shows). Without it, a short read is taken to mean "drained" and the turn
// waits without another recv: edge-triggered pollers report the next bytes anew.
// tally: the running thread's, for request latencies (none: not measured).
// Requests answered in the turn get their --work done before their answers are written.
Turn drive(Connection& c, int fd, Connection::Action first, std::int64_t now_ms, bool peer_closed,
           Tally* tally = nullptr) noexcept;

// Goes on with the action the connection is waiting to do (the socket became ready).
inline Turn resume(Connection& c, int fd, std::int64_t now_ms, bool peer_closed, Tally* tally = nullptr) noexcept {
    return drive(c, fd, c.action(), now_ms, peer_closed, tally);
}

// Applies a timeout or drain notice and drives what follows.
inline Turn drive_event(Connection& c, int fd, const Connection::Event& e, Tally* tally = nullptr) noexcept {
    return drive(c, fd, c.on(e), e.now_ms, false, tally);
}

// What every mode does after a connection took input or wrote output, whatever its I/O:
// the --work owed for requests answered since `served_before`, and the latency of answers
// the last `sent` event finished.
inline void after_input(const Connection& c, std::uint64_t served_before) noexcept {
    const WorkSpec& work = c.rules().config.work;
    if (work.active() && c.served() > served_before) perform_work(work, c.served() - served_before);
}
inline void after_sent(const Connection& c, Tally* tally) noexcept {
    const Connection::Finished f = c.finished();
    if (tally != nullptr && f.answers != 0) tally->latency.record(f.total_ns / static_cast<std::int64_t>(f.answers), f.answers);
}

// With an access log, tells the connection its client's address (after open()).
void note_peer(Connection& c, int fd);

// The nanosecond time for an input or sent event: read only when something uses it
// (ConnectionRules::fine_time); else 0, and the connection derives it from the millisecond time.
std::int64_t fine_clock(const Connection& c) noexcept;

// Adds the answers (and 429s) the connection gave since it was last asked to the tally.
inline void count_answers(Connection& c, Tally& t) noexcept {
    const Connection::Counts n = c.take_counts();
    if (n.answers != 0) t.add(Tally::requests, n.answers);
    if (n.limited != 0) t.add(Tally::rate_limited, n.limited);
}

}  // namespace okserve
