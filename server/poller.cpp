#include "server/poller.hpp"

#include <cerrno>

#include "server/sys/error.hpp"

namespace okserve {

Poller::Poller() : fd_(::epoll_create1(EPOLL_CLOEXEC)) {
    if (!fd_) throw SysError("start", "epoll_create1", errno);
}

int Poller::add(int fd, std::uint32_t events, std::uint64_t data) noexcept {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = data;
    return ::epoll_ctl(fd_.get(), EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : errno;
}

int Poller::modify(int fd, std::uint32_t events, std::uint64_t data) noexcept {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = data;
    return ::epoll_ctl(fd_.get(), EPOLL_CTL_MOD, fd, &ev) == 0 ? 0 : errno;
}

int Poller::remove(int fd) noexcept {
    return ::epoll_ctl(fd_.get(), EPOLL_CTL_DEL, fd, nullptr) == 0 ? 0 : errno;
}

int Poller::wait(epoll_event* events, int max_events, int timeout_ms) noexcept {
    const int n = ::epoll_wait(fd_.get(), events, max_events, timeout_ms);
    return n < 0 ? 0 : n;  // EINTR: the caller's loop simply goes round again
}

}  // namespace okserve
