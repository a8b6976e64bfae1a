// okserve event plumbing: a thin epoll set, a monotonic clock and a deadline heap.
// Knows nothing of HTTP or of what a connection is; callers own the meaning of `data`.
#pragma once

#include <cstdint>
#include <ctime>
#include <queue>
#include <vector>

#include <sys/epoll.h>

#include "server/sys/fd.hpp"

namespace okserve {

// Milliseconds on CLOCK_MONOTONIC: deadlines never jump with the wall clock.
inline std::int64_t now_ms() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// One epoll set. epoll_ctl is safe to call from any thread; wait() from one at a time.
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

// Deadlines keyed by (slot, generation), earliest first: O(log n) per push and pop.
// Entries are lazy: the owner checks on expiry whether the entry still matters.
class DeadlineHeap {
public:
    struct Entry {
        std::int64_t due_ms;
        std::uint32_t slot;
        std::uint32_t generation;
        bool operator>(const Entry& o) const noexcept { return due_ms > o.due_ms; }
    };
    void push(Entry e) { heap_.push(e); }
    bool empty() const noexcept { return heap_.empty(); }
    const Entry& top() const noexcept { return heap_.top(); }
    void pop() noexcept { heap_.pop(); }
    std::size_t size() const noexcept { return heap_.size(); }

private:
    std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_;
};

}  // namespace okserve
