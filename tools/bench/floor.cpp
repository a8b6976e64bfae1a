// floor: the least a server on epoll can do to answer the bench's clients, as a yardstick.
//
// One thread, one epoll set, edge-triggered sockets, TCP_DEFER_ACCEPT on the listener (as
// okserve has by default). It reads, finds each request's end
// ("\r\n\r\n"), and writes a fixed answer of the same bytes as okserve's and nginx's
// (Date, Content-Type, Content-Length: 3, "OK\n"), once per request, in one send per read.
// It keeps a connection alive as HTTP/1.1 says (HTTP/1.0 only with "Connection: keep-alive",
// HTTP/1.1 unless "Connection: close"), which is what wrk, ab and h2load need.
//
// It is not an HTTP server and must not be used as one: it parses nothing else, ignores
// request bodies, has no timeouts, no limits, no drain, no counters. What it costs per
// answer is what the kernel's TCP path and epoll leave; what okserve's reactor costs above
// it is the price of being a real server (parser, timers, limits, graceful shutdown).
//
// Usage: floor [--host 127.0.0.1] [--port 0]; prints "floor listen=HOST:PORT" when ready
// and "floor: N answers" when SIGTERM or SIGINT stops it.
//
// floor --syscall-cost prints what one system call costs here and exits: the median of 7
// rounds of 200,000 getppid(2) calls, "floor syscall_ns=N". On one machine it can differ by
// eight times from one day to the next (a virtual machine's exits, mitigations), and with it
// what batching system calls (io_uring) is worth: the bench puts it in its report's header.
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

volatile std::sig_atomic_t stop_requested = 0;
void on_stop(int) { stop_requested = 1; }

constexpr std::size_t read_size = 64 * 1024;
constexpr std::size_t max_partial = 64 * 1024;  // a head longer than this closes the connection

struct Conn {
    std::string partial;  // a request head that has not fully arrived yet
    std::string out;      // answers the socket did not take yet
    std::size_t out_off = 0;
    bool close_after = false;  // the last answer said "Connection: close"
    bool open = false;
};

// The three answers, rebuilt when the second changes (the Date header).
struct Answers {
    std::time_t second = -1;
    std::string keep, keep10, close;

    void refresh() {
        const std::time_t now = std::time(nullptr);
        if (now == second) return;
        second = now;
        char date[64];
        std::tm tm{};
        ::gmtime_r(&now, &tm);
        std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        const std::string head = std::string("HTTP/1.1 200 OK\r\nDate: ") + date +
                                 "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n";
        keep = head + "\r\nOK\n";
        keep10 = head + "Connection: keep-alive\r\n\r\nOK\n";
        close = head + "Connection: close\r\n\r\nOK\n";
    }
};

bool contains_nocase(std::string_view hay, std::string_view needle) {
    if (needle.size() > hay.size()) return false;
    for (std::size_t i = 0; i + needle.size() <= hay.size(); ++i) {
        std::size_t k = 0;
        while (k < needle.size() && (hay[i + k] | 0x20) == needle[k]) ++k;
        if (k == needle.size()) return true;
    }
    return false;
}

enum class Reply { keep, keep10, close };

// Keep-alive as RFC 9112 section 9.3 has it, from the few header words the clients send.
Reply reply_for(std::string_view head) {
    if (head.substr(0, head.find("\r\n")).ends_with("HTTP/1.0")) {
        return contains_nocase(head, "connection: keep-alive") ? Reply::keep10 : Reply::close;
    }
    return contains_nocase(head, "connection: close") ? Reply::close : Reply::keep;
}

class Floor {
public:
    explicit Floor(int listen_fd) : listen_fd_(listen_fd), ep_(::epoll_create1(EPOLL_CLOEXEC)) {
        if (ep_ < 0) die("epoll_create1");
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = listen_fd_;
        if (::epoll_ctl(ep_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) die("epoll_ctl");
    }

    unsigned long long run() {
        epoll_event events[256];
        while (!stop_requested) {
            const int n = ::epoll_wait(ep_, events, 256, -1);
            if (n < 0) continue;  // EINTR: a stop signal, looked at above
            answers_.refresh();
            for (int i = 0; i < n; ++i) {
                const int fd = events[i].data.fd;
                if (fd == listen_fd_) accept_all();
                else serve(fd, events[i].events);
            }
        }
        return answered_;
    }

private:
    static void die(const char* what) {
        std::fprintf(stderr, "floor: %s: %s\n", what, std::strerror(errno));
        std::exit(1);
    }

    void accept_all() {
        for (;;) {
            const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) return;  // EAGAIN, or an error the next event retries
            if (static_cast<std::size_t>(fd) >= conns_.size()) conns_.resize(static_cast<std::size_t>(fd) + 1024);
            conns_[static_cast<std::size_t>(fd)] = Conn{};
            conns_[static_cast<std::size_t>(fd)].open = true;
            // TCP_DEFER_ACCEPT: the request came with the connection. A connection that is
            // answered and closed at once never enters the epoll set; one that stays is
            // added now (adding reports readiness that is already there, so nothing is lost).
            serve(fd, EPOLLIN);
            if (!conns_[static_cast<std::size_t>(fd)].open) continue;
            epoll_event ev{};
            ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
            ev.data.fd = fd;
            if (::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) close_conn(fd);
        }
    }

    void close_conn(int fd) {
        conns_[static_cast<std::size_t>(fd)] = Conn{};
        ::close(fd);
    }

    void serve(int fd, std::uint32_t events) {
        Conn& c = conns_[static_cast<std::size_t>(fd)];
        if (!c.open) return;
        if (!c.out.empty() && !flush(fd, c)) return;
        if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
        for (;;) {
            const ssize_t n = ::recv(fd, buf_, read_size, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                close_conn(fd);
                return;
            }
            if (n < 0) return;
            if (!take(c, std::string_view(buf_, static_cast<std::size_t>(n)))) {
                close_conn(fd);
                return;
            }
            if (!flush(fd, c)) return;
            if (static_cast<std::size_t>(n) < read_size) return;  // a short read emptied the socket
        }
    }

    // Answers every complete request in the bytes; false when the connection must close.
    bool take(Conn& c, std::string_view bytes) {
        if (c.close_after) return true;  // after "Connection: close", the rest is ignored
        std::string joined;
        if (!c.partial.empty()) {
            joined = std::move(c.partial);
            joined.append(bytes);
            c.partial.clear();
            bytes = joined;
        }
        std::size_t start = 0;
        for (;;) {
            const std::size_t end = bytes.find("\r\n\r\n", start);
            if (end == std::string_view::npos) break;
            const std::string_view head = bytes.substr(start, end + 4 - start);
            start = end + 4;
            ++answered_;
            const Reply r = reply_for(head);
            c.out += r == Reply::keep ? answers_.keep : r == Reply::keep10 ? answers_.keep10 : answers_.close;
            if (r == Reply::close) {
                c.close_after = true;
                return true;
            }
        }
        if (bytes.size() - start > max_partial) return false;
        c.partial.assign(bytes.substr(start));
        return true;
    }

    // Writes what is pending; false when the connection closed or must wait for EPOLLOUT.
    bool flush(int fd, Conn& c) {
        while (c.out_off < c.out.size()) {
            const ssize_t n = ::send(fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) return false;
            if (n <= 0) {
                close_conn(fd);
                return false;
            }
            c.out_off += static_cast<std::size_t>(n);
        }
        c.out.clear();
        c.out_off = 0;
        if (c.close_after) {
            close_conn(fd);
            return false;
        }
        return true;
    }

    int listen_fd_;
    int ep_;
    Answers answers_;
    std::vector<Conn> conns_;
    unsigned long long answered_ = 0;
    char buf_[read_size];
};

int usage(const char* why) {
    std::fprintf(stderr, "floor: %s (usage: floor [--host IPV4] [--port N] | floor --syscall-cost)\n", why);
    return 2;
}

double seconds_now() {
    timespec t{};
    ::clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// The cheapest system call there is, made straight (syscall(2), so no libc cache or
// wrapper stands in the way): what is left is the kernel's entry and exit.
int syscall_cost() {
    constexpr int rounds = 7, calls = 200'000;
    double ns[rounds];
    for (double& r : ns) {
        const double start = seconds_now();
        for (int i = 0; i < calls; ++i) ::syscall(SYS_getppid);
        r = (seconds_now() - start) * 1e9 / calls;
    }
    std::sort(ns, ns + rounds);
    std::printf("floor syscall_ns=%.1f\n", ns[rounds / 2]);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    long port = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--syscall-cost" && argc == 2) return syscall_cost();
        if ((arg == "--host" || arg == "--port") && i + 1 < argc) {
            const char* value = argv[++i];
            if (arg == "--host") {
                host = value;
                continue;
            }
            char* end = nullptr;
            port = std::strtol(value, &end, 10);
            if (*value == '\0' || *end != '\0' || port < 0 || port > 65535) return usage("bad --port");
        } else {
            return usage(("unknown or incomplete argument '" + std::string(arg) + "'").c_str());
        }
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) return usage("bad --host (an IPv4 address)");

    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // accepted sockets inherit it
    ::setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &one, sizeof one);  // as okserve's default
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 4096) != 0) {
        std::fprintf(stderr, "floor: listen on %s:%ld: %s\n", host.c_str(), port, std::strerror(errno));
        return 1;
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);

    struct sigaction sa{};
    sa.sa_handler = on_stop;  // no SA_RESTART: epoll_wait returns EINTR and the loop ends
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    std::printf("floor listen=%s:%u\n", host.c_str(), ntohs(addr.sin_port));
    std::fflush(stdout);
    static Floor server(fd);  // its read buffer is large: not on the stack
    const unsigned long long answered = server.run();
    std::printf("floor: %llu answers\n", answered);
    return 0;
}
