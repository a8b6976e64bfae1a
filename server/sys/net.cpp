#include "server/sys/net.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "server/sys/error.hpp"

namespace okserve {

namespace {

std::string show(const sockaddr_storage& ss) {
    char text[INET6_ADDRSTRLEN] = {};
    if (ss.ss_family == AF_INET6) {
        const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
        ::inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
        return std::string("[") + text + "]:" + std::to_string(ntohs(a->sin6_port));
    }
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
    return std::string(text) + ":" + std::to_string(ntohs(a->sin_port));
}

std::uint16_t port_of(const sockaddr_storage& ss) {
    if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
    return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
}

// Resolves host:port to one passive address; throws with the resolver's message.
sockaddr_storage resolve(const std::string& host, std::uint16_t port, socklen_t& len) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
    if (rc != 0 || found == nullptr) {
        throw UsageError("okserve: --host " + host + ": " + ::gai_strerror(rc));
    }
    sockaddr_storage ss{};
    std::memcpy(&ss, found->ai_addr, found->ai_addrlen);
    len = found->ai_addrlen;
    ::freeaddrinfo(found);
    return ss;
}

void set_int(int fd, int level, int name, int value, const std::string& where, const char* what) {
    if (::setsockopt(fd, level, name, &value, sizeof value) != 0) throw SysError(where, what, errno);
}

}  // namespace

Listener open_listener(const std::string& host, std::uint16_t port, int backlog, ListenOptions options) {
    socklen_t len = 0;
    sockaddr_storage addr = resolve(host, port, len);
    const std::string where = "listen " + show(addr);

    Fd fd(::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) throw SysError(where, "socket", errno);
    set_int(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1, where, "setsockopt(SO_REUSEADDR)");
    if (options.reuse_port) set_int(fd.get(), SOL_SOCKET, SO_REUSEPORT, 1, where, "setsockopt(SO_REUSEPORT)");
    // Explicit, so the behaviour does not depend on net.ipv6.bindv6only.
    if (addr.ss_family == AF_INET6) set_int(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, 1, where, "setsockopt(IPV6_V6ONLY)");
    set_int(fd.get(), IPPROTO_TCP, TCP_NODELAY, 1, where, "setsockopt(TCP_NODELAY)");
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) throw SysError(where, "bind", errno);
    if (::listen(fd.get(), backlog) != 0) throw SysError(where, "listen", errno);
    // The kernel finishes the handshake and holds the connection until its first bytes
    // arrive (or about a second passes), so the server is woken once per connection, with
    // the request ready to read. README.md "Which mode when" has the measured difference.
    if (options.defer_accept) set_int(fd.get(), IPPROTO_TCP, TCP_DEFER_ACCEPT, 1, where, "setsockopt(TCP_DEFER_ACCEPT)");

    sockaddr_storage bound{};
    socklen_t blen = sizeof bound;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &blen) != 0) {
        throw SysError(where, "getsockname", errno);
    }
    Listener l;
    l.fd = std::move(fd);
    l.address = show(bound);
    l.port = port_of(bound);
    const int cap = somaxconn();
    l.backlog = (cap > 0 && cap < backlog) ? cap : backlog;
    return l;
}

int somaxconn() noexcept {
    std::FILE* f = std::fopen("/proc/sys/net/core/somaxconn", "re");
    if (!f) return -1;
    int value = -1;
    if (std::fscanf(f, "%d", &value) != 1) value = -1;
    std::fclose(f);
    return value;
}

Accepted accept_one(int listen_fd) noexcept {
    for (;;) {
        const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) return Accepted{Fd(fd), 0};
        if (errno == EINTR) continue;
        return Accepted{Fd(), errno};
    }
}

NofileLimit raise_nofile_limit() noexcept {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return {};
    NofileLimit out{rl.rlim_cur, rl.rlim_cur};
    if (rl.rlim_cur < rl.rlim_max) {
        rlimit raised = rl;
        raised.rlim_cur = rl.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) out.after = raised.rlim_cur;
    }
    return out;
}

}  // namespace okserve
