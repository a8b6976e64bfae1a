// okserve server counters: every accepted connection ends in exactly one bucket, so
// accepted == answered + rejected + timed_out + closed_by_client + errors at rest.
// Each thread writes its own Tally (no shared atomic on the hot path); reads sum them.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

#include "server/latency_histogram.hpp"

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
        rate_limited,   // requests answered 429 (--rate-limit); also in requests
        helped,         // --mode pool: turns a worker with nothing queued took itself from epoll
        field_count
    };
    static constexpr const char* names[field_count] = {
        "accepted", "answered", "rejected", "timed_out", "closed_by_client", "errors", "requests",
        "accept_errors", "queue_full", "evicted", "yields", "rate_limited", "helped"};
    std::atomic<std::uint64_t> v[field_count]{};
    LatencyHistogram latency;  // requests' first byte read to answers' last byte written

    void add(Field f, std::uint64_t n = 1) noexcept {
        v[f].store(v[f].load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    // For a tally that several threads share (rare paths only).
    void add_shared(Field f, std::uint64_t n = 1) noexcept { v[f].fetch_add(n, std::memory_order_relaxed); }
    void count(Outcome o) noexcept { add(static_cast<Field>(static_cast<int>(o) + answered)); }
    std::uint64_t get(Field f) const noexcept { return v[f].load(std::memory_order_relaxed); }
};
static_assert(Tally::answered + static_cast<int>(Outcome::errors) == Tally::errors);

// A sum of tallies at one moment (while threads run, fields may be a moment apart).
struct Figures {
    std::array<std::uint64_t, Tally::field_count> v{};
    std::array<std::uint64_t, LatencyHistogram::fine_count> fine{};
    std::array<std::uint64_t, LatencyHistogram::bounds_ns.size() + 1> buckets{};  // not cumulative
    std::uint64_t latency_count = 0;
    std::uint64_t latency_sum_ns = 0;

    std::uint64_t get(Tally::Field f) const noexcept { return v[f]; }
    std::uint64_t ended() const noexcept {
        return v[Tally::answered] + v[Tally::rejected] + v[Tally::timed_out] + v[Tally::closed_by_client] +
               v[Tally::errors];
    }
    // Connections accepted and not yet ended (0 if the sums are a moment apart).
    std::uint64_t open() const noexcept { return v[Tally::accepted] > ended() ? v[Tally::accepted] - ended() : 0; }
    void add(const Tally& t) noexcept {
        for (int f = 0; f < Tally::field_count; ++f) v[f] += t.get(static_cast<Tally::Field>(f));
        for (std::size_t i = 0; i < fine.size(); ++i) fine[i] += t.latency.fine(i);
        for (std::size_t i = 0; i < buckets.size(); ++i) buckets[i] += t.latency.bucket(i);
        latency_count += t.latency.count();
        latency_sum_ns += t.latency.sum_ns();
    }
    // What happened between `before` and this.
    Figures since(const Figures& before) const noexcept {
        Figures d = *this;
        const auto sub = [](std::uint64_t a, std::uint64_t b) { return a > b ? a - b : 0; };
        for (std::size_t f = 0; f < v.size(); ++f) d.v[f] = sub(v[f], before.v[f]);
        for (std::size_t i = 0; i < fine.size(); ++i) d.fine[i] = sub(fine[i], before.fine[i]);
        for (std::size_t i = 0; i < buckets.size(); ++i) d.buckets[i] = sub(buckets[i], before.buckets[i]);
        d.latency_count = sub(latency_count, before.latency_count);
        d.latency_sum_ns = sub(latency_sum_ns, before.latency_sum_ns);
        return d;
    }
    // The latency at percentile p (0..100) in nanoseconds: the upper edge of the fine bucket
    // that holds that rank (about 6% above the true value at most); 0 without samples.
    std::int64_t percentile_ns(double p) const noexcept {
        std::uint64_t total = 0;
        for (std::uint64_t c : fine) total += c;
        if (total == 0) return 0;
        auto rank = static_cast<std::uint64_t>(p / 100.0 * static_cast<double>(total) + 0.5);
        if (rank < 1) rank = 1;
        if (rank > total) rank = total;
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < fine.size(); ++i) {
            seen += fine[i];
            if (seen >= rank) return LatencyHistogram::fine_upper_ns(i);
        }
        return LatencyHistogram::fine_upper_ns(fine.size() - 1);
    }
};

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
    Figures figures() const {
        Figures out;
        std::lock_guard lock(mutex_);
        for (const Tally& t : tallies_) out.add(t);
        return out;
    }
    std::uint64_t ended() const { return figures().ended(); }
    std::string summary() const {
        const Figures fig = figures();
        std::string s;
        for (int f = 0; f < Tally::field_count; ++f) {
            if (!s.empty()) s += ' ';
            s += Tally::names[f];
            s += '=';
            s += std::to_string(fig.get(static_cast<Tally::Field>(f)));
        }
        return s;
    }

private:
    mutable std::mutex mutex_;
    std::deque<Tally> tallies_;  // a deque: addresses stay put as it grows
};

}  // namespace okserve
