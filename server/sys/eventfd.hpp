// okserve eventfd helpers: one thread tells another "look at your commands" without a
// lock. Knows nothing of what the commands are.
#pragma once

#include <cerrno>
#include <cstdint>

#include <sys/eventfd.h>
#include <unistd.h>

#include "server/sys/error.hpp"
#include "server/sys/fd.hpp"

namespace okserve {

// A non-blocking, close-on-exec eventfd. Throws SysError.
inline Fd make_eventfd() {
    Fd fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!fd) throw SysError("start", "eventfd", errno);
    return fd;
}

// Makes the eventfd readable (adds 1). Cannot fail in a way the caller could act on: the
// counter only overflows after 2^64 - 2 notices nobody read.
inline void notify(const Fd& efd) noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t w = ::write(efd.get(), &one, sizeof one);
}

// Reads (and so resets) the counter.
inline void consume(const Fd& efd) noexcept {
    std::uint64_t count = 0;
    [[maybe_unused]] const ssize_t r = ::read(efd.get(), &count, sizeof count);
}

}  // namespace okserve
