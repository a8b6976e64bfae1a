// okserve::Fd: sole owner of a file descriptor; the only place close(2) is called.
// Knows nothing of what the descriptor is (socket, epoll set, signalfd).
#pragma once

#include <type_traits>
#include <utility>

#include "server/sys/calls.hpp"

namespace okserve {

class Fd {
public:
    Fd() noexcept = default;
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) reset(std::exchange(other.fd_, -1));
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }

    // Closes the current descriptor (if any) and takes ownership of `fd`.
    // close(2) is not retried on EINTR: on Linux the descriptor is gone either way.
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) sys::close(fd_);
        fd_ = fd;
    }
    int release() noexcept { return std::exchange(fd_, -1); }

private:
    int fd_ = -1;
};

// A Job that owns an Fd must move without throwing, or a dropped job could leak it.
static_assert(std::is_nothrow_move_constructible_v<Fd>);
static_assert(std::is_nothrow_move_assignable_v<Fd>);

}  // namespace okserve
