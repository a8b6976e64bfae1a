// okserve server counters: every accepted connection ends in exactly one bucket, so
// accepted == answered + rejected + timed_out + closed_by_client + errors at rest.
// Each thread writes its own Tally (no shared atomic on the hot path); reads sum them.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

namespace okserve {

// How one connection ended. Counted once, where the connection is closed.
enum class Outcome : std::uint8_t {
    answered,          // at least one complete answer, and no error or timeout after it
    rejected,          // 503: no room (queue full or thread cap) under --overflow reject
    timed_out,         // 408, a blocked write, or nothing sent before the header timeout
    closed_by_client,  // the client closed or reset before any answer
    errors,            // a malformed request (4xx/5xx answer) or an unexpected socket error
};

// The figures of one thread, or of a sum. Written by one thread only (a load and a store,
// no locked instruction), read by any: relaxed atomics keep that well-defined.
struct alignas(64) Tally {
    enum Field : std::uint8_t {
        accepted, answered, rejected, timed_out, closed_by_client, errors,
        requests,       // answers sent (a connection may carry many)
        accept_errors,  // EMFILE/ENFILE/ENOBUFS episodes
        queue_full,     // hand-offs that found no room (queue full, thread cap)
        evicted,        // idle keep-alive connections closed to make room (counted answered)
        yields,         // turns cut short by the per-turn budget
        field_count
    };
    std::atomic<std::uint64_t> v[field_count]{};

    void add(Field f, std::uint64_t n = 1) noexcept {
        v[f].store(v[f].load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    // For a tally that several threads share (rare paths only).
    void add_shared(Field f, std::uint64_t n = 1) noexcept { v[f].fetch_add(n, std::memory_order_relaxed); }
    void count(Outcome o) noexcept { add(static_cast<Field>(static_cast<int>(o) + answered)); }
    std::uint64_t get(Field f) const noexcept { return v[f].load(std::memory_order_relaxed); }
};
static_assert(Tally::answered + static_cast<int>(Outcome::errors) == Tally::errors);

class ServerStats {
public:
    // A tally for one thread to write; lives as long as the ServerStats.
    Tally& new_tally() {
        std::lock_guard lock(mutex_);
        return tallies_.emplace_back();
    }
    // The sum of every tally. While threads run, fields may be a moment apart.
    std::uint64_t get(Tally::Field f) const {
        std::lock_guard lock(mutex_);
        std::uint64_t sum = 0;
        for (const Tally& t : tallies_) sum += t.get(f);
        return sum;
    }
    std::uint64_t ended() const {
        return get(Tally::answered) + get(Tally::rejected) + get(Tally::timed_out) +
               get(Tally::closed_by_client) + get(Tally::errors);
    }
    std::string summary() const {
        static constexpr const char* names[Tally::field_count] = {
            "accepted", "answered", "rejected", "timed_out", "closed_by_client", "errors",
            "requests", "accept_errors", "queue_full", "evicted", "yields"};
        std::string s;
        for (int f = 0; f < Tally::field_count; ++f) {
            if (!s.empty()) s += ' ';
            s += names[f];
            s += '=';
            s += std::to_string(get(static_cast<Tally::Field>(f)));
        }
        return s;
    }

private:
    mutable std::mutex mutex_;
    std::deque<Tally> tallies_;  // a deque: addresses stay put as it grows
};

}  // namespace okserve
