// The socket driver over a real socketpair: one turn goes as far as the socket allows,
// then says why it stopped; a client that keeps the socket full gets a bounded turn.
#include <doctest/doctest.h>

#include <cerrno>
#include <string>

#include <sys/socket.h>

#include "server/connection.hpp"
#include "server/poller.hpp"
#include "server/socket_driver.hpp"
#include "server/sys/fd.hpp"

using okserve::Config;
using okserve::Connection;
using okserve::ConnectionRules;
using okserve::Fd;
using okserve::Turn;

namespace {

const std::string get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

struct Pair {
    Pair() : rules(cfg), conn(rules) {
        int sv[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
        server = Fd(sv[0]);
        client = Fd(sv[1]);
        conn.open(0);
    }
    // Sends what the socket takes now; returns how much.
    std::size_t send_some(const std::string& bytes) {
        const ssize_t n = ::send(client.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
        return n > 0 ? static_cast<std::size_t>(n) : 0;
    }
    std::string read_all_now() {
        std::string got;
        char buf[65536];
        for (;;) {
            const ssize_t n = ::recv(client.get(), buf, sizeof buf, 0);
            if (n <= 0) break;
            got.append(buf, static_cast<std::size_t>(n));
        }
        return got;
    }
    Turn resume() { return okserve::resume(conn, server.get(), 0, false); }

    Config cfg;
    ConnectionRules rules;
    Connection conn;
    Fd server, client;
};

std::size_t count(const std::string& hay, const std::string& needle) {
    std::size_t n = 0;
    for (std::size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
    return n;
}

}  // namespace

TEST_SUITE("driver") {

TEST_CASE("a request is answered in one turn, which then waits to read") {
    Pair p;
    CHECK(p.resume() == Turn::wait_readable);  // nothing yet
    p.send_some(get);
    CHECK(p.resume() == Turn::wait_readable);
    CHECK(count(p.read_all_now(), "HTTP/1.1 200 OK") == 1);
    CHECK(p.conn.answers() == 1);
}

TEST_CASE("answers the peer does not read wait for writability; none is lost") {
    Pair p;
    constexpr int n = 20000;
    std::string batch;
    for (int i = 0; i < n; ++i) batch += get;
    std::size_t sent = 0;
    std::string got;
    bool saw_wait_writable = false;
    for (int round = 0; round < 100000 && count(got, "HTTP/1.1 200") < static_cast<std::size_t>(n); ++round) {
        if (sent < batch.size()) sent += p.send_some(batch.substr(sent, 65536));
        const Turn t = p.resume();
        REQUIRE(t != Turn::closed);
        saw_wait_writable = saw_wait_writable || t == Turn::wait_writable;
        if (t == Turn::wait_writable || round % 4 == 0) got += p.read_all_now();
    }
    got += p.read_all_now();
    CHECK(saw_wait_writable);
    CHECK(count(got, "HTTP/1.1 200 OK") == n);
}

TEST_CASE("a client that keeps the socket full gets a bounded turn") {
    Pair p;
    // Room for several turns' worth of bytes in the socket (SO_SNDBUFFORCE needs root;
    // the default also works where it holds more than a turn's budget).
    const int big = 8 << 20;
    ::setsockopt(p.client.get(), SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
    p.send_some("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n");
    const std::string chunk(65536, 'x');
    std::size_t queued = 0;
    while (queued < 3 * okserve::turn_budget_bytes) {
        const std::size_t n = p.send_some(chunk);
        if (n == 0) break;
        queued += n;
    }
    REQUIRE(queued > okserve::turn_budget_bytes + okserve::read_chunk);
    // Without the budget one turn would read all of it; with it, the turn stops early
    // and says it left work behind.
    CHECK(p.resume() == Turn::yielded);
    CHECK(p.conn.state() == Connection::State::body);
    int turns = 1;
    while (p.resume() == Turn::yielded) ++turns;
    CHECK(turns >= 2);
}

TEST_CASE("linger shuts the write side: the peer sees the 400, then EOF, and may still send") {
    Pair p;
    p.send_some("BAD\r\n\r\n");
    CHECK(p.resume() == Turn::wait_readable);
    char buf[4096];
    const ssize_t n = ::recv(p.client.get(), buf, sizeof buf, 0);
    REQUIRE(n > 0);
    CHECK(std::string(buf, static_cast<std::size_t>(n)).rfind("HTTP/1.1 400 ", 0) == 0);
    CHECK(::recv(p.client.get(), buf, sizeof buf, 0) == 0);  // EOF: the write side is shut
    CHECK(p.send_some("more") == 4);                        // the read side is open
    CHECK(p.resume() == Turn::wait_readable);
    p.client.reset();
    CHECK(p.resume() == Turn::closed);
    CHECK(p.conn.outcome() == okserve::Outcome::errors);
}

}  // TEST_SUITE
