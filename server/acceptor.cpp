#include "server/acceptor.hpp"

#include <cerrno>
#include <cstdio>
#include <string>

#include "server/sys/error.hpp"
#include "server/sys/net.hpp"

namespace okserve {

AcceptStep accept_step(int listen_fd, Tally& tally, std::int64_t now) noexcept {
    Accepted a = accept_one(listen_fd);
    if (a.fd) return {AcceptStep::Kind::accepted, std::move(a.fd), 0};
    // EINVAL: the listener was shut down for the drain; nothing more will come.
    if (a.err == EAGAIN || a.err == EWOULDBLOCK || a.err == EINVAL) return {AcceptStep::Kind::empty, Fd(), a.err};
    if (a.err == ECONNABORTED || a.err == EPROTO || a.err == EPERM || a.err == EINTR) {
        return {AcceptStep::Kind::again, Fd(), a.err};
    }
    // EMFILE, ENFILE, ENOBUFS, ENOMEM: wait for descriptors or memory to free up.
    tally.add(Tally::accept_errors);
    thread_local std::int64_t last_log = -1'000'000;
    thread_local std::uint64_t since_log = 0;
    ++since_log;
    if (now - last_log >= 1000) {
        std::fprintf(stderr, "okserve: accept4: %s (%llu times); pausing accept for %lldms\n",
                     std::string(errno_text(a.err)).c_str(), static_cast<unsigned long long>(since_log),
                     static_cast<long long>(back_off_ms));
        last_log = now;
        since_log = 0;
    }
    return {AcceptStep::Kind::back_off, Fd(), a.err};
}

}  // namespace okserve
