// Two okserve servers inside one program: started on port 0, asked over a socket, counted,
// stopped gracefully, one started again on a new port and stopped at once. What a test
// suite does with a stub backend. Build against an installed okserve:
//   c++ embed.cpp $(pkg-config --cflags --libs okserve) -o embed
#include <okserve/okserve.hpp>

#include <cstdio>
#include <cstring>
#include <string>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

// One HTTP/1.1 request to 127.0.0.1:port with Connection: close; the whole answer back.
std::string ask(std::uint16_t port, const char* path) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return {};
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string answer;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        const std::string request = std::string("GET ") + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
            char buf[4096];
            for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) answer.append(buf, static_cast<std::size_t>(n));
        }
    }
    ::close(fd);
    return answer;
}

bool check(bool ok, const char* what) {
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    return ok;
}

bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

int main() {
    bool ok = true;
    try {
        okserve::Server one({"--port", "0", "--body", "one\n", "--mode", "reactor", "--workers", "1"});
        okserve::Server two({"--port", "0", "--status", "202", "--body", "two\n", "--workers", "1"});
        one.start();
        two.start();
        ok &= check(one.port() != 0 && two.port() != 0 && one.port() != two.port(), "two servers, two ports");
        std::printf("     one on %s, two on %s\n", one.address().c_str(), two.address().c_str());

        ok &= check(ends_with(ask(one.port(), "/a"), "\r\n\r\none\n"), "one answers its body");
        const std::string a2 = ask(two.port(), "/b");
        ok &= check(a2.rfind("HTTP/1.1 202 Accepted\r\n", 0) == 0 && ends_with(a2, "\r\n\r\ntwo\n"), "two answers 202 and its body");
        ok &= check(ends_with(ask(one.port(), "/c"), "one\n"), "one answers again");

        ok &= check(one.stop(), "one drains within the timeout");
        const okserve::Counters c1 = one.counters();
        ok &= check(c1.requests == 2 && c1.accepted == 2 && c1.answered == 2 && c1.open == 0, "one counted 2 connections, 2 answers");
        ok &= check(!one.running() && one.port() == 0, "one is stopped");
        ok &= check(two.running() && ends_with(ask(two.port(), "/d"), "two\n"), "two still serves");

        one.start();  // again: --port 0 picks a new port
        ok &= check(one.running() && ends_with(ask(one.port(), "/e"), "one\n"), "one started again");
        ok &= check(one.counters().requests == 3, "its counters go on across restarts");
        one.stop_now();
        two.stop();
        ok &= check(two.counters().requests == 2 && two.counters().open == 0, "two counted 2 answers");

        try {
            okserve::Server bad({"--workers", "zero"});
            ok &= check(false, "a bad option is refused");
        } catch (const okserve::Error& e) {
            ok &= check(e.kind() == okserve::Error::Kind::usage, "a bad option is a usage error");
            std::printf("     (%s)\n", e.what());
        }
        okserve::Server first({"--port", "0"});
        first.start();
        okserve::Server clash({"--port", std::to_string(first.port())});
        try {
            clash.start();
            ok &= check(false, "a port in use is refused");
        } catch (const okserve::Error& e) {
            ok &= check(e.kind() == okserve::Error::Kind::system, "a port in use is a system error, caught");
            std::printf("     (%s)\n", e.what());
        }
        std::printf("%s\n", okserve::version());
    } catch (const okserve::Error& e) {
        std::printf("FAIL unexpected: %s\n", e.what());
        return 1;
    }
    std::printf("%s\n", ok ? "all passed" : "some failed");
    return ok ? 0 : 1;
}
