#include "server/sys/net.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "server/sys/calls.hpp"
#include "server/sys/error.hpp"

namespace okserve {

namespace {

std::string show(const sockaddr_storage& ss, socklen_t len = sizeof(sockaddr_storage)) {
    if (ss.ss_family == AF_UNIX) {
        const auto* u = reinterpret_cast<const sockaddr_un*>(&ss);
        const std::size_t max = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
        if (max == 0) return "unix:(unnamed)";
        if (u->sun_path[0] == '\0') return "unix:@" + std::string(u->sun_path + 1, ::strnlen(u->sun_path + 1, max - 1));
        return "unix:" + std::string(u->sun_path, ::strnlen(u->sun_path, max));
    }
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
    if (ss.ss_family == AF_UNIX) return 0;
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

int get_int(int fd, int level, int name, const std::string& where, const char* what) {
    int value = 0;
    socklen_t len = sizeof value;
    if (::getsockopt(fd, level, name, &value, &len) != 0) throw SysError(where, what, errno);
    return value;
}

const char* file_kind(mode_t m) {
    if (S_ISREG(m)) return "a regular file";
    if (S_ISFIFO(m)) return "a pipe";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISDIR(m)) return "a directory";
    return "not a socket";
}

// A socket file is in the way of bind(2): replace it if nobody listens on it (a crashed
// server left it), else refuse. Anything that is not a socket is never removed.
void replace_stale_socket(const std::string& path, const sockaddr_un& addr, socklen_t len, const std::string& where) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) return;  // gone meanwhile: bind again
        throw SysError(where, "lstat", errno);
    }
    if (!S_ISSOCK(st.st_mode)) {
        throw std::runtime_error(where + ": bind: Address already in use (" + file_kind(st.st_mode) +
                                 " is there; okserve replaces only a stale socket)");
    }
    // Non-blocking, so a live server with a full backlog answers EAGAIN instead of a wait.
    Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!probe) throw SysError(where, "socket", errno);
    if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), len) == 0 || errno == EAGAIN ||
        errno == EINPROGRESS) {
        throw std::runtime_error(where + ": bind: Address already in use (a server is listening on it)");
    }
    if (errno != ECONNREFUSED) throw SysError(where, "connect (to the socket in the way)", errno);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw SysError(where, "unlink (the stale socket)", errno);
}

}  // namespace

bool Listener::tcp() const noexcept { return family == AF_INET || family == AF_INET6; }

Listener open_unix_listener(const std::string& path, unsigned mode, int backlog) {
    sockaddr_un addr{};
    if (path.empty()) throw UsageError("okserve: --unix: needs a path");
    if (path.size() >= sizeof addr.sun_path) {
        throw UsageError("okserve: --unix: '" + path + "' is too long (" + std::to_string(path.size()) +
                         " bytes; a Unix socket path has at most " + std::to_string(sizeof addr.sun_path - 1) + ")");
    }
    if (path.find('\0') != std::string::npos) throw UsageError("okserve: --unix: the path holds a NUL byte");
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    const auto* sa = reinterpret_cast<const sockaddr*>(&addr);
    const std::string where = "listen unix:" + path;

    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) throw SysError(where, "socket", errno);
    if (::bind(fd.get(), sa, len) != 0) {
        if (errno != EADDRINUSE) throw SysError(where, "bind", errno);
        replace_stale_socket(path, addr, len, where);
        if (::bind(fd.get(), sa, len) != 0) throw SysError(where, "bind", errno);
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        const int err = errno;
        ::unlink(path.c_str());
        throw SysError(where, "stat", err);
    }
    Listener l;
    l.file = SocketFile(path, st.st_dev, st.st_ino);  // from here on, a failure removes it
    // Before listen(2): until then a connect is refused, whatever the mode says.
    if (::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) throw SysError(where, "chmod", errno);
    if (::listen(fd.get(), backlog) != 0) throw SysError(where, "listen", errno);
    l.fd = std::move(fd);
    l.address = "unix:" + path;
    l.family = AF_UNIX;
    const int cap = somaxconn();
    l.backlog = (cap > 0 && cap < backlog) ? cap : backlog;
    return l;
}

void SocketFile::remove() noexcept {
    if (path_.empty()) return;
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == dev_ && st.st_ino == ino_) {
        ::unlink(path_.c_str());
    }
    path_.clear();
}

Listener adopt_listener(int fd, const std::string& origin) {
    Fd own(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (!own) throw SysError(origin, "fcntl(F_DUPFD_CLOEXEC)", errno);
    // The original stays open (it is its giver's), but no child of ours inherits it.
    if (const int fdflags = ::fcntl(fd, F_GETFD); fdflags >= 0) ::fcntl(fd, F_SETFD, fdflags | FD_CLOEXEC);
    struct stat st {};
    if (::fstat(own.get(), &st) != 0) throw SysError(origin, "fstat", errno);
    if (!S_ISSOCK(st.st_mode)) throw std::runtime_error(origin + ": not a socket (" + file_kind(st.st_mode) + ")");
    const int family = get_int(own.get(), SOL_SOCKET, SO_DOMAIN, origin, "getsockopt(SO_DOMAIN)");
    if (family != AF_INET && family != AF_INET6 && family != AF_UNIX) {
        throw std::runtime_error(origin + ": not an IPv4, IPv6 or Unix socket (family " + std::to_string(family) + ")");
    }
    if (get_int(own.get(), SOL_SOCKET, SO_TYPE, origin, "getsockopt(SO_TYPE)") != SOCK_STREAM) {
        throw std::runtime_error(origin + ": not a stream socket (okserve serves TCP or Unix stream sockets)");
    }
    if (get_int(own.get(), SOL_SOCKET, SO_ACCEPTCONN, origin, "getsockopt(SO_ACCEPTCONN)") == 0) {
        throw std::runtime_error(origin + ": a socket that is not listening (a connection? systemd: Accept=no)");
    }
    const int flags = ::fcntl(own.get(), F_GETFL);
    if (flags < 0 || ::fcntl(own.get(), F_SETFL, flags | O_NONBLOCK) != 0) throw SysError(origin, "fcntl(O_NONBLOCK)", errno);
    if (family != AF_UNIX) set_int(own.get(), IPPROTO_TCP, TCP_NODELAY, 1, origin, "setsockopt(TCP_NODELAY)");

    sockaddr_storage bound{};
    socklen_t blen = sizeof bound;
    if (::getsockname(own.get(), reinterpret_cast<sockaddr*>(&bound), &blen) != 0) throw SysError(origin, "getsockname", errno);
    Listener l;
    l.fd = std::move(own);
    l.address = show(bound, blen);
    l.port = port_of(bound);
    l.backlog = -1;
    l.family = family;
    l.origin = origin;
    return l;
}

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
    l.family = addr.ss_family;
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
        const int fd = sys::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
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
