// The connection state machine over a real socketpair, with the dispatcher's part played
// by the test: epoll events are claimed and run one at a time, as PoolMode does.
#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <string>

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "server/connection.hpp"

using okserve::Config;
using okserve::Connection;
using okserve::Fd;
using okserve::ServerContext;

namespace {

struct Harness {
    explicit Harness(Config c = {}) : cfg(std::move(c)), ctx(cfg, 4) {
        int sv[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
        peer = Fd(sv[1]);
        conn = ctx.table->acquire();
        REQUIRE(conn != nullptr);
        ctx.live.add(1);
        conn->open(Fd(sv[0]));
    }

    void send(const std::string& bytes) {
        std::size_t off = 0;
        while (off < bytes.size()) {
            const ssize_t n = ::send(peer.get(), bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
            if (n > 0) { off += static_cast<std::size_t>(n); continue; }
            REQUIRE(errno == EAGAIN);
            pump_once(50);  // let the server side drain its socket
        }
    }

    // Plays the dispatcher for one epoll wait: claims each event and runs the connection.
    void pump_once(int timeout_ms) {
        epoll_event ev[8];
        const int n = ctx.poller.wait(ev, 8, timeout_ms);
        for (int i = 0; i < n; ++i) {
            if (ev[i].data.u64 != conn->token()) continue;  // stale: closed since
            if (conn->claim_for_event(ev[i].events)) conn->run(Connection::Wake::ready);
        }
    }

    // Reads what the server sent until `enough` says so, the peer sees EOF, or 5 s pass.
    std::string receive(const std::function<bool(const std::string&)>& enough, bool* eof = nullptr) {
        std::string got;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (std::chrono::steady_clock::now() < deadline && !enough(got)) {
            char buf[65536];
            const ssize_t n = ::recv(peer.get(), buf, sizeof buf, 0);
            if (n > 0) { got.append(buf, static_cast<std::size_t>(n)); continue; }
            if (n == 0) { if (eof) *eof = true; break; }
            pump_once(10);
        }
        return got;
    }

    // Everything the server sends until it shuts its side (eof set) or 5 s pass.
    std::string receive_until_eof(bool& eof) {
        return receive([](const std::string&) { return false; }, &eof);
    }

    bool closed() const { return ctx.live.count() == 0; }

    // Plays the dispatcher until the connection has closed, for one second at most.
    void pump_until_closed() {
        for (int i = 0; i < 100 && !closed(); ++i) pump_once(10);
    }

    Config cfg;
    ServerContext ctx;
    Fd peer;
    Connection* conn = nullptr;
};

std::size_t count(const std::string& hay, const std::string& needle) {
    std::size_t n = 0;
    for (std::size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
    return n;
}

const std::string get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

}  // namespace

TEST_SUITE("connection") {

TEST_CASE("pipelined requests are answered in order in one batch, and the connection parks") {
    Harness h;
    h.send(get + "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n" + get);
    h.conn->run(Connection::Wake::ready);
    const std::string got = h.receive([](const std::string& s) { return count(s, "HTTP/1.1 200 OK") == 3; });
    CHECK(count(got, "HTTP/1.1 200 OK") == 3);
    CHECK(count(got, "OK\n") == 2);  // the HEAD answer has no body
    CHECK(got.find("Connection: close") == std::string::npos);
    CHECK(h.ctx.stats.requests.load() == 3);
    CHECK_FALSE(h.closed());
    h.peer.reset();  // the client leaves: EOF ends the connection as answered
    h.pump_until_closed();
    CHECK(h.closed());
    CHECK(h.ctx.stats.answered.load() == 1);
}

TEST_CASE("Connection: close is answered, then the server closes") {
    Harness h;
    h.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    h.conn->run(Connection::Wake::ready);
    bool eof = false;
    const std::string got = h.receive_until_eof(eof);
    CHECK(eof);
    CHECK(got.find("Connection: close\r\n") != std::string::npos);
    CHECK(h.closed());
    CHECK(h.ctx.stats.answered.load() == 1);
}

TEST_CASE("a request split across many reads is answered once complete") {
    Harness h;
    h.conn->run(Connection::Wake::ready);  // nothing yet: parks
    for (char ch : get) {
        h.send(std::string(1, ch));
        h.pump_once(10);
    }
    const std::string got = h.receive([](const std::string& s) { return s.find("OK\n") != std::string::npos; });
    CHECK(count(got, "HTTP/1.1 200 OK") == 1);
}

TEST_CASE("a malformed request gets 400, a write shutdown, and lingers until the client closes") {
    Harness h;
    h.send("GET / HTTP/1.1\r\nBad Name: x\r\nHost: x\r\n\r\ntrailing garbage");
    h.conn->run(Connection::Wake::ready);
    bool eof = false;
    const std::string got = h.receive_until_eof(eof);
    CHECK(got.rfind("HTTP/1.1 400 ", 0) == 0);
    CHECK(eof);               // the server shut its write side...
    CHECK_FALSE(h.closed());  // ...but still reads what the client sends
    h.send("more garbage");
    h.pump_once(10);
    h.peer.reset();
    h.pump_until_closed();
    CHECK(h.closed());
    CHECK(h.ctx.stats.errors.load() == 1);
}

TEST_CASE("a timeout mid-request answers 408; an idle one closes silently") {
    SUBCASE("mid-request") {
        Harness h;
        h.send("GET / HTTP/1.1\r\nHo");
        h.conn->run(Connection::Wake::ready);
        REQUIRE(h.conn->claim_if_parked());
        h.conn->run(Connection::Wake::timeout);
        bool eof = false;
        const std::string got = h.receive_until_eof(eof);
        CHECK(got.rfind("HTTP/1.1 408 ", 0) == 0);
        CHECK(eof);
        h.peer.reset();
        h.pump_until_closed();
        CHECK(h.ctx.stats.timed_out.load() == 1);
    }
    SUBCASE("idle after an answer") {
        Harness h;
        h.send(get);
        h.conn->run(Connection::Wake::ready);
        h.receive([](const std::string& s) { return s.find("OK\n") != std::string::npos; });
        REQUIRE(h.conn->claim_if_parked());
        h.conn->run(Connection::Wake::timeout);
        bool eof = false;
        const std::string got = h.receive_until_eof(eof);
        CHECK(got.empty());
        CHECK(eof);
        CHECK(h.ctx.stats.answered.load() == 1);
    }
}

TEST_CASE("answers the socket can't take wait for EPOLLOUT; no request is lost") {
    Harness h;
    const int small = 4096;
    ::setsockopt(h.peer.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    constexpr int n = 2000;
    std::string batch;
    for (int i = 0; i < n; ++i) batch += get;
    h.send(batch);
    h.conn->run(Connection::Wake::ready);
    const std::string got = h.receive([](const std::string& s) { return count(s, "HTTP/1.1 200 OK") == n; });
    CHECK(count(got, "HTTP/1.1 200 OK") == n);
    CHECK(h.ctx.stats.requests.load() == n);
    CHECK_FALSE(h.closed());
}

TEST_CASE("drain closes an idle connection at once and frames in-flight answers with close") {
    Harness h;
    h.send(get);
    h.conn->run(Connection::Wake::ready);
    h.receive([](const std::string& s) { return s.find("OK\n") != std::string::npos; });
    h.ctx.draining.store(true);
    REQUIRE(h.conn->claim_if_parked());
    const std::uint32_t generation = h.conn->generation();
    h.conn->run(Connection::Wake::drain);
    CHECK(h.closed());
    CHECK(h.conn->generation() != generation);  // stale events and timers now miss
    CHECK_FALSE(h.conn->claim_if_parked());
}

TEST_CASE("while draining, the next answer says Connection: close") {
    Harness h;
    h.ctx.draining.store(true);
    h.send(get + get);
    h.conn->run(Connection::Wake::ready);
    bool eof = false;
    const std::string got = h.receive_until_eof(eof);
    CHECK(count(got, "HTTP/1.1 200 OK") == 1);  // the second request is never answered
    CHECK(got.find("Connection: close\r\n") != std::string::npos);
    CHECK(eof);
}

TEST_CASE("overflow reject answers 503 with Retry-After") {
    Harness h;
    h.conn->reject();
    bool eof = false;
    const std::string got = h.receive_until_eof(eof);
    CHECK(got.rfind("HTTP/1.1 503 ", 0) == 0);
    CHECK(got.find("Retry-After: 1\r\n") != std::string::npos);
    CHECK(count(got, "HTTP/1.1 503") == 1);
    h.peer.reset();
    h.pump_until_closed();
    CHECK(h.ctx.stats.rejected.load() == 1);
}

TEST_CASE("the books balance") {
    Harness h;
    h.send(get);
    h.conn->run(Connection::Wake::ready);
    h.peer.reset();
    h.pump_until_closed();
    REQUIRE(h.closed());
    // The harness opened one connection by hand; a real dispatcher counts accepted.
    CHECK(h.ctx.stats.ended() == 1);
}

}  // TEST_SUITE
