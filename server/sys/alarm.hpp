// okserve::Alarm: a timerfd that a loop keeps set no later than its earliest deadline, so the
// loop can wait for events with no timeout at all. Knows nothing of what the deadlines are.
//
// Why: a wait with a timeout is not free. epoll_wait (and io_uring_enter) with a finite
// timeout reads the clock and works out a slack on every call, and arms a high-resolution
// timer each time it sleeps, even when no deadline is anywhere near. A loop that answers a
// keep-alive request every few microseconds makes that call on every pass. An alarm costs a
// system call only when the earliest deadline moves earlier than the time it is set for,
// which keep-alive traffic never does: each answer moves a connection's deadline later.
// When the alarm rings early (its deadline was pushed back meanwhile), the loop finds nothing
// due and sets it again: one extra wake-up per timeout period, not one per answer.
#pragma once

#include <cerrno>
#include <cstdint>

#include <sys/timerfd.h>
#include <unistd.h>

#include "server/sys/error.hpp"
#include "server/sys/fd.hpp"

namespace okserve {

class Alarm {
public:
    // A non-blocking, close-on-exec timerfd on CLOCK_MONOTONIC. Throws SysError.
    Alarm() : fd_(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) {
        if (!fd_) throw SysError("start", "timerfd_create", errno);
    }

    // Readable when the alarm rings: watch it in the loop's epoll set, or read it through a ring.
    int fd() const noexcept { return fd_.get(); }

    // Makes sure the alarm rings no later than due_ms (CLOCK_MONOTONIC milliseconds; -1:
    // nothing is due). Returns true when that took a system call: only when nothing is set,
    // or what is set is later than due_ms. A due time already past rings at once.
    bool ring_by(std::int64_t due_ms) noexcept {
        if (due_ms < 0 || (set_for_ >= 0 && set_for_ <= due_ms)) return false;
        itimerspec at{};
        at.it_value.tv_sec = due_ms / 1000;
        at.it_value.tv_nsec = (due_ms % 1000) * 1'000'000;
        if (at.it_value.tv_sec == 0 && at.it_value.tv_nsec == 0) at.it_value.tv_nsec = 1;  // 0 would disarm
        if (::timerfd_settime(fd_.get(), TFD_TIMER_ABSTIME, &at, nullptr) == 0) set_for_ = due_ms;
        return true;
    }

    // The alarm rang (its fd was readable): reads it, and forgets the time it was set for,
    // so the next ring_by sets it again.
    void rang() noexcept {
        std::uint64_t expirations = 0;
        [[maybe_unused]] const ssize_t r = ::read(fd_.get(), &expirations, sizeof expirations);
        forget();
    }

    // The same when the caller read the fd itself (a read through io_uring).
    void forget() noexcept { set_for_ = -1; }

    // What it is set for (-1: nothing); for tests.
    std::int64_t set_for() const noexcept { return set_for_; }

private:
    Fd fd_;
    std::int64_t set_for_ = -1;
};

}  // namespace okserve
