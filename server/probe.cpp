#include "server/probe.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/sys/fd.hpp"

namespace okserve {

namespace {

using Clock = std::chrono::steady_clock;

struct Target {
    std::string host;       // without brackets
    std::string port = "80";
    std::string path = "/";
    std::string authority;  // for Host
};

bool parse_url(const std::string& url, Target& t) {
    const std::string scheme = "http://";
    if (url.compare(0, scheme.size(), scheme) != 0) return false;
    std::string rest = url.substr(scheme.size());
    const std::size_t slash = rest.find('/');
    t.authority = rest.substr(0, slash);
    t.path = slash == std::string::npos ? "/" : rest.substr(slash);
    if (t.authority.empty()) return false;
    std::string hostport = t.authority;
    if (hostport[0] == '[') {
        const std::size_t close = hostport.find(']');
        if (close == std::string::npos) return false;
        t.host = hostport.substr(1, close - 1);
        if (close + 1 < hostport.size()) {
            if (hostport[close + 1] != ':') return false;
            t.port = hostport.substr(close + 2);
        }
    } else {
        const std::size_t colon = hostport.find(':');
        t.host = hostport.substr(0, colon);
        if (colon != std::string::npos) t.port = hostport.substr(colon + 1);
    }
    if (t.host.empty() || t.port.empty() || t.port.size() > 5) return false;
    for (char c : t.port)
        if (c < '0' || c > '9') return false;
    if (std::stoi(t.port) > 65535) return false;
    for (char c : t.path)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
    return true;
}

int left_ms(Clock::time_point deadline) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return ms > 0 ? static_cast<int>(ms) : 0;
}

int fail(const std::string& url, const std::string& why) {
    std::fprintf(stderr, "okserve probe: %s: %s\n", url.c_str(), why.c_str());
    return 1;
}

}  // namespace

int run_probe(const ProbeOptions& o) {
    Target t;
    if (!parse_url(o.url, t)) {
        std::fprintf(stderr, "okserve probe: '%s' is not http://HOST[:PORT][/PATH]\n", o.url.c_str());
        return 2;
    }
    const Clock::time_point deadline = Clock::now() + o.timeout;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (int rc = ::getaddrinfo(t.host.c_str(), t.port.c_str(), &hints, &found); rc != 0) {
        return fail(o.url, std::string("cannot resolve ") + t.host + ": " + ::gai_strerror(rc));
    }
    std::string why = "no address";
    Fd fd;
    for (addrinfo* a = found; a != nullptr && !fd; a = a->ai_next) {
        Fd s(::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
        if (!s) {
            why = std::strerror(errno);
            continue;
        }
        int rc = ::connect(s.get(), a->ai_addr, a->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            pollfd p{s.get(), POLLOUT, 0};
            rc = ::poll(&p, 1, left_ms(deadline));
            if (rc == 0) {
                why = "timed out connecting";
                continue;
            }
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) {
                why = err == ECONNREFUSED ? "connection refused" : std::strerror(err);
                continue;
            }
            rc = 0;
        }
        if (rc != 0) {
            why = errno == ECONNREFUSED ? "connection refused" : std::strerror(errno);
            continue;
        }
        fd = std::move(s);
    }
    ::freeaddrinfo(found);
    if (!fd) return fail(o.url, why);

    const std::string request = "GET " + t.path + " HTTP/1.1\r\nHost: " + t.authority +
                                "\r\nUser-Agent: okserve-probe\r\nConnection: close\r\n\r\n";
    std::size_t sent = 0;
    while (sent < request.size()) {
        const ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            pollfd p{fd.get(), POLLOUT, 0};
            if (::poll(&p, 1, left_ms(deadline)) == 0) return fail(o.url, "timed out sending the request");
            continue;
        }
        return fail(o.url, std::string("send: ") + std::strerror(errno));
    }
    std::string answer;
    while (answer.find("\r\n") == std::string::npos) {
        char buf[1024];
        const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
        if (n > 0) {
            answer.append(buf, static_cast<std::size_t>(n));
            if (answer.size() > 8192) break;
            continue;
        }
        if (n == 0) return fail(o.url, answer.empty() ? "closed without an answer" : "closed mid-answer");
        if (errno == EAGAIN || errno == EINTR) {
            pollfd p{fd.get(), POLLIN, 0};
            if (::poll(&p, 1, left_ms(deadline)) == 0) return fail(o.url, "timed out waiting for the answer");
            continue;
        }
        return fail(o.url, errno == ECONNRESET ? "connection reset" : std::string("recv: ") + std::strerror(errno));
    }
    // "HTTP/1.1 200 OK"
    const std::string line = answer.substr(0, answer.find("\r\n"));
    if (line.size() < 12 || line.compare(0, 7, "HTTP/1.") != 0 || line[8] != ' ') {
        return fail(o.url, "not an HTTP answer");
    }
    const std::string code = line.substr(9, 3);
    if (code[0] != '2') return fail(o.url, "status " + line.substr(9));
    std::printf("okserve probe: %s: %s\n", o.url.c_str(), line.substr(9).c_str());
    return 0;
}

}  // namespace okserve
