// okserve::Poller: a thin epoll set, and the monotonic clock every mode reads.
// Knows nothing of HTTP or of what a connection is; callers own the meaning of `data`.
#pragma once

#include <cstdint>
#include <ctime>

#include <sys/epoll.h>

#include "server/sys/fd.hpp"

namespace okserve {

// Milliseconds on CLOCK_MONOTONIC: deadlines never jump with the wall clock.
inline std::int64_t now_ms() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// Nanoseconds on the same clock: request latencies, the rate limit.
inline std::int64_t now_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// One epoll set. Every call is safe from any thread, at the same time too: in --mode pool
// workers look at the set (wait with timeout 0) while the dispatcher waits on it.
class Poller {
public:
    Poller();  // throws SysError
    int fd() const noexcept { return fd_.get(); }
    // Each returns 0 or an errno value; nothing here throws.
    int add(int fd, std::uint32_t events, std::uint64_t data) noexcept;
    int modify(int fd, std::uint32_t events, std::uint64_t data) noexcept;
    int remove(int fd) noexcept;
    // Waits up to timeout_ms (-1: forever); EINTR counts as "no events".
    int wait(epoll_event* events, int max_events, int timeout_ms) noexcept;

private:
    Fd fd_;
};

}  // namespace okserve
