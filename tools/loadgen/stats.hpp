// okserve::loadgen run statistics: owns the error kinds, the counters one worker keeps and how
// per-thread results merge. Plain data: no sockets, no threads, no formatting.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <ctime>

#include "tools/loadgen/histogram.hpp"

namespace okserve::loadgen {

enum class ErrorKind : std::uint8_t {
    connect,      // connect() failed or did not finish within --timeout
    reset,        // ECONNRESET/EPIPE, or the server closed before answering a request sent
    timeout,      // no complete response within --timeout
    bad_status,   // a well-framed response whose status is not 2xx (it still counts as a response)
    bad_framing,  // malformed status line or headers, impossible length, truncated body
};
inline constexpr std::size_t error_kind_count = 5;
inline constexpr const char* error_kind_names[error_kind_count] = {
    "connect", "reset", "timeout", "bad_status", "bad_framing"};

// The first error of one kind, as one line (errno text included), kept so the report can say
// why and not only how many. Fixed size: noting it never allocates on the hot path.
struct FirstError {
    std::int64_t at_ns = INT64_MAX;  // now_ns() when it happened; INT64_MAX: none yet
    char text[160] = {};
};

struct Totals {
    std::uint64_t responses = 0;                        // every complete response, any status
    std::uint64_t bytes_read = 0;
    std::uint64_t connect_attempts = 0;                 // each connect(), first tries and retries
    std::uint64_t sent = 0;                             // requests handed to the socket
    std::uint64_t late = 0;                             // -R: sent 1 ms or more after it was due
    std::uint64_t never_sent = 0;                       // -R: due before the end, never sent
    std::array<FirstError, error_kind_count> first_errors{};
    std::array<std::uint64_t, error_kind_count> errors{};
    std::array<std::uint64_t, 6> status_classes{};      // [1] = 1xx ... [5] = 5xx; [0] unused
    Histogram latency;                                  // nanoseconds

    void count_error(ErrorKind kind, std::uint64_t n = 1) noexcept { errors[static_cast<std::size_t>(kind)] += n; }
    std::uint64_t error(ErrorKind kind) const noexcept { return errors[static_cast<std::size_t>(kind)]; }
    std::uint64_t error_total() const noexcept {
        std::uint64_t sum = 0;
        for (std::uint64_t e : errors) sum += e;
        return sum;
    }
    bool wants_first(ErrorKind kind) const noexcept {
        return first_errors[static_cast<std::size_t>(kind)].at_ns == INT64_MAX;
    }
    void merge(const Totals& other) noexcept {
        responses += other.responses;
        bytes_read += other.bytes_read;
        connect_attempts += other.connect_attempts;
        sent += other.sent;
        late += other.late;
        never_sent += other.never_sent;
        for (std::size_t i = 0; i < first_errors.size(); ++i) {
            if (other.first_errors[i].at_ns < first_errors[i].at_ns) first_errors[i] = other.first_errors[i];
        }
        for (std::size_t i = 0; i < errors.size(); ++i) errors[i] += other.errors[i];
        for (std::size_t i = 0; i < status_classes.size(); ++i) status_classes[i] += other.status_classes[i];
        latency.merge(other.latency);
    }
};

// -n: the run's whole request budget, shared by the workers. A ticket is taken before each
// connection attempt or request and given back only for a request the server closed on without
// answering, so responses + failed requests add up to exactly the budget.
class RequestBudget {
public:
    explicit RequestBudget(std::uint64_t limit) noexcept : limit_(limit) {}
    // Up to `want` tickets; fewer (maybe 0) near the end.
    std::uint64_t try_claim(std::uint64_t want) noexcept {
        std::uint64_t taken = taken_.load(std::memory_order_relaxed);
        for (;;) {
            const std::uint64_t grant = std::min(want, limit_ - taken);
            if (grant == 0) return 0;
            if (taken_.compare_exchange_weak(taken, taken + grant, std::memory_order_relaxed)) return grant;
        }
    }
    void give_back(std::uint64_t n) noexcept { taken_.fetch_sub(n, std::memory_order_relaxed); }
    bool exhausted() const noexcept { return taken_.load(std::memory_order_relaxed) >= limit_; }

private:
    const std::uint64_t limit_;
    std::atomic<std::uint64_t> taken_{0};
};

inline std::int64_t now_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace okserve::loadgen
