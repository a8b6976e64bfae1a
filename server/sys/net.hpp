// okserve socket helpers: listening sockets (TCP, Unix, handed over), accept, descriptor
// limits. Knows nothing of HTTP, epoll or threads.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include <sys/types.h>

#include "server/sys/fd.hpp"

namespace okserve {

// The socket file of a Unix listener okserve created: removed at remove() or destruction,
// but only while the path still names that very file (a newer server may have replaced it).
class SocketFile {
public:
    SocketFile() noexcept = default;
    SocketFile(std::string path, dev_t dev, ino_t ino) noexcept : path_(std::move(path)), dev_(dev), ino_(ino) {}
    SocketFile(SocketFile&& o) noexcept : path_(std::exchange(o.path_, {})), dev_(o.dev_), ino_(o.ino_) {}
    SocketFile& operator=(SocketFile&& o) noexcept {
        if (this != &o) {
            remove();
            path_ = std::exchange(o.path_, {});
            dev_ = o.dev_;
            ino_ = o.ino_;
        }
        return *this;
    }
    SocketFile(const SocketFile&) = delete;
    SocketFile& operator=(const SocketFile&) = delete;
    ~SocketFile() { remove(); }

    void remove() noexcept;  // idempotent
    const std::string& path() const noexcept { return path_; }

private:
    std::string path_;
    dev_t dev_ = 0;
    ino_t ino_ = 0;
};

struct Listener {
    Fd fd;
    // As shown to users: "127.0.0.1:8080", "[::1]:8080" or "unix:/run/okserve.sock".
    std::string address;
    std::uint16_t port = 0;  // 0 for a Unix socket
    int backlog = 0;         // the effective backlog: min(asked, net.core.somaxconn); -1: inherited
    int family = 0;          // AF_INET, AF_INET6 or AF_UNIX
    // Handed over by a supervisor ("systemd fd 3", "--fd 5"), else empty. Such a socket is
    // shared with its giver: okserve never shuts it down, so connections that arrive during
    // the drain wait in its backlog for the next instance.
    std::string origin;
    SocketFile file;  // --unix: the socket file okserve created, removed at shutdown

    bool tcp() const noexcept;
    bool inherited() const noexcept { return !origin.empty(); }
};

// Binds and listens on host:port (a numeric IPv4/IPv6 address or a name that resolves
// locally). Sets SO_REUSEADDR, IPV6_V6ONLY for IPv6, TCP_NODELAY (inherited by accepted
// sockets on Linux), non-blocking. Throws SysError naming the step that failed.
struct ListenOptions {
    bool reuse_port = false;    // SO_REUSEPORT: several listeners share the port (one per loop)
    bool defer_accept = false;  // TCP_DEFER_ACCEPT: a connection is reported once data arrives
};
Listener open_listener(const std::string& host, std::uint16_t port, int backlog, ListenOptions options = {});

// Binds and listens on a Unix-domain stream socket at `path`, with permissions `mode` set
// before listen(2), so no client can connect through a wider mode. A socket file left by a
// crashed server (connecting to it is refused) is replaced; a live one is not. Throws
// UsageError for a path too long for sun_path, SysError or std::runtime_error otherwise.
Listener open_unix_listener(const std::string& path, unsigned mode, int backlog);

// Serves a listening socket someone else opened (systemd, --fd). `fd` stays open and is
// made close-on-exec; okserve works on its own duplicate, made non-blocking. Checks that it
// is a listening IPv4, IPv6 or Unix stream socket; throws SysError (a closed descriptor) or
// std::runtime_error naming `origin` and the problem. Sets TCP_NODELAY on a TCP socket
// and nothing else: TCP_DEFER_ACCEPT and the backlog are the giver's choice.
Listener adopt_listener(int fd, const std::string& origin);

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
