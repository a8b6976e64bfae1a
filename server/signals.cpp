#include "server/signals.hpp"

#include <cerrno>
#include <csignal>

#include <poll.h>
#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "server/sys/error.hpp"

namespace okserve {

Signals::Signals() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGUSR1}) sigaddset(&set, s);
    if (int err = pthread_sigmask(SIG_BLOCK, &set, nullptr)) throw SysError("start", "pthread_sigmask", err);
    fd_.reset(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!fd_) throw SysError("start", "signalfd", errno);
    // A write to a closed socket returns EPIPE (sends also pass MSG_NOSIGNAL); a closed
    // stdout must not kill the server either.
    std::signal(SIGPIPE, SIG_IGN);
}

SignalKind Signals::wait(int timeout_ms) noexcept {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return SignalKind::none;
    signalfd_siginfo info{};
    if (::read(fd_.get(), &info, sizeof info) != sizeof info) return SignalKind::none;
    switch (info.ssi_signo) {
        case SIGUSR1: return SignalKind::report;
        case SIGHUP: return SignalKind::reopen;
        default: return SignalKind::drain;
    }
}

}  // namespace okserve
