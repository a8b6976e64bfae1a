// okserve socket helpers: listening sockets, accept, descriptor limits.
// Knows nothing of HTTP, epoll or threads.
#pragma once

#include <cstdint>
#include <string>

#include "server/sys/fd.hpp"

namespace okserve {

struct Listener {
    Fd fd;
    std::string address;  // as shown to users: "127.0.0.1:8080" or "[::1]:8080"
    std::uint16_t port = 0;
    int backlog = 0;      // the effective backlog: min(asked, net.core.somaxconn)
};

// Binds and listens on host:port (a numeric IPv4/IPv6 address or a name that resolves
// locally). Sets SO_REUSEADDR, IPV6_V6ONLY for IPv6, TCP_NODELAY (inherited by accepted
// sockets on Linux), non-blocking. Throws SysError naming the step that failed.
struct ListenOptions {
    bool reuse_port = false;    // SO_REUSEPORT: several listeners share the port (one per loop)
    bool defer_accept = false;  // TCP_DEFER_ACCEPT: a connection is reported once data arrives
};
Listener open_listener(const std::string& host, std::uint16_t port, int backlog, ListenOptions options = {});

// net.core.somaxconn, or -1 when it can't be read.
int somaxconn() noexcept;

// The result of one accept4(2): an owned, non-blocking, close-on-exec socket, or the errno.
struct Accepted {
    Fd fd;
    int err = 0;  // 0 on success; EAGAIN when the backlog is empty
};
Accepted accept_one(int listen_fd) noexcept;

// Raises the soft RLIMIT_NOFILE to the hard limit. Returns {before, after}.
struct NofileLimit {
    std::uint64_t before = 0;
    std::uint64_t after = 0;
};
NofileLimit raise_nofile_limit() noexcept;

}  // namespace okserve
