// okserve server counters: every accepted connection ends in exactly one bucket, so
// accepted == answered + rejected + timed_out + closed_by_client + errors at rest.
// Knows nothing of sockets; any thread may bump them.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace okserve {

// How one connection ended. Counted once, by the single close path.
enum class Outcome : std::uint8_t {
    answered,          // at least one complete answer, and no error or timeout after it
    rejected,          // 503: the queue was full under --overflow reject
    timed_out,         // 408, a blocked write, or nothing sent before the header timeout
    closed_by_client,  // the client closed or reset before any answer
    errors,            // a malformed request (4xx/5xx answer) or an unexpected socket error
};

struct ServerStats {
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<std::uint64_t> answered{0};
    std::atomic<std::uint64_t> rejected{0};
    std::atomic<std::uint64_t> timed_out{0};
    std::atomic<std::uint64_t> closed_by_client{0};
    std::atomic<std::uint64_t> errors{0};
    std::atomic<std::uint64_t> requests{0};      // answers sent (a connection may carry many)
    std::atomic<std::uint64_t> accept_errors{0}; // EMFILE/ENFILE/ENOBUFS episodes
    std::atomic<std::uint64_t> queue_full{0};    // hand-offs that found the pool's queue full

    void count(Outcome o) noexcept {
        auto& c = o == Outcome::answered ? answered
                : o == Outcome::rejected ? rejected
                : o == Outcome::timed_out ? timed_out
                : o == Outcome::closed_by_client ? closed_by_client
                : errors;
        c.fetch_add(1, std::memory_order_relaxed);
    }

    std::uint64_t ended() const noexcept {
        return answered.load() + rejected.load() + timed_out.load() + closed_by_client.load() +
               errors.load();
    }

    std::string summary() const {
        return "accepted=" + std::to_string(accepted.load()) +
               " answered=" + std::to_string(answered.load()) +
               " rejected=" + std::to_string(rejected.load()) +
               " timed_out=" + std::to_string(timed_out.load()) +
               " closed_by_client=" + std::to_string(closed_by_client.load()) +
               " errors=" + std::to_string(errors.load()) +
               " requests=" + std::to_string(requests.load()) +
               " queue_full=" + std::to_string(queue_full.load()) +
               " accept_errors=" + std::to_string(accept_errors.load());
    }
};

}  // namespace okserve
