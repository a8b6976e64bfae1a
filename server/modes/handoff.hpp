// okserve hand-off: a connection that moves between a dispatcher thread (which owns the
// epoll set and the timers) and worker threads (which do its turns). Owns the claim
// protocol that gives the connection exactly one owner at a time; knows nothing of HTTP.
#pragma once

#include <atomic>
#include <cstdint>

#include <sys/epoll.h>

#include "server/connection.hpp"
#include "server/sys/fd.hpp"

namespace okserve {

// Ownership. Only the owner touches conn, fd and the plain fields. The state word says
// who that is:
//   busy    a worker owns it (or a job for it is queued);
//   parked  nobody does; it waits in epoll (edge-triggered) for an event or a timer;
//   pending (with busy) an event arrived while it was busy: the owner looks again before
//           parking, since an edge-triggered event is not repeated;
//   closed  its descriptor is gone; stale events and timers for it are ignored.
// A parked connection is claimed by exactly one of: an event (claim_for_event) or the
// dispatcher taking it for a timer, a drain or an eviction (claim_if_parked).
struct SharedConnection {
    enum class Wake : std::uint8_t { ready, timeout, drain, evict };
    static constexpr std::uint32_t parked = 0, busy = 1, pending = 2, closed = 4;

    SharedConnection(const ConnectionRules& rules, std::uint32_t index) noexcept : conn(rules), slot(index) {}

    // The dispatcher, or a pool worker that helps: an epoll event. True when the caller now
    // owns the connection.
    bool claim_for_event(std::uint32_t events) noexcept;
    // Dispatcher: take a parked connection. True on success.
    bool claim_if_parked() noexcept {
        std::uint32_t expected = parked;
        return state.compare_exchange_strong(expected, busy);  // seq_cst: see park()
    }
    // Owner: gives the connection back (parked). False when an event came while it was
    // busy: the owner still owns it and must look again.
    bool try_park() noexcept {
        std::uint32_t expected = busy;
        if (state.compare_exchange_strong(expected, parked)) return true;
        state.store(busy, std::memory_order_relaxed);
        return false;
    }
    // epoll data: slot in the low half, generation in the high half.
    std::uint64_t token() const noexcept {
        return (static_cast<std::uint64_t>(generation.load(std::memory_order_acquire)) << 32) | slot;
    }

    // Written by the owner, read by the dispatcher without owning it.
    std::atomic<std::uint32_t> state{closed};
    std::atomic<std::uint32_t> generation{0};
    std::atomic<std::int64_t> deadline_ms{0};
    std::atomic<std::int64_t> idle_since_ms{0};  // idle keep-alive since then; 0: not idle
    std::atomic<bool> peer_closed{false};        // EPOLLRDHUP seen: a short read may hide EOF

    // Owner only.
    Connection conn;
    Fd fd;
    const std::uint32_t slot;
    bool registered = false;
    bool told_drain = false;
};

inline bool SharedConnection::claim_for_event(std::uint32_t events) noexcept {
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) peer_closed.store(true, std::memory_order_relaxed);
    const std::uint32_t prev = state.fetch_or(busy | pending, std::memory_order_acq_rel);
    return (prev & (busy | closed)) == 0;
}

}  // namespace okserve
