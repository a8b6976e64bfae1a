// The connection state machine without sockets: events in, actions and bytes out, with the
// clock injected as plain numbers, so every timer path is reached without waiting.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "server/connection.hpp"

using okserve::Config;
using okserve::Connection;
using okserve::ConnectionRules;
using okserve::Outcome;
using Action = okserve::Connection::Action;
using State = okserve::Connection::State;
using Kind = okserve::Connection::Event::Kind;

namespace {

const std::string get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

Config small_config() {
    Config c;
    c.header_timeout = std::chrono::milliseconds(1000);
    c.body_timeout = std::chrono::milliseconds(2000);
    c.keepalive_timeout = std::chrono::milliseconds(3000);
    c.write_timeout = std::chrono::milliseconds(4000);
    c.linger_timeout = std::chrono::milliseconds(500);
    return c;
}

// One connection and a fake peer: `in` feeds bytes, `take` plays the kernel taking output.
struct Peer {
    explicit Peer(Config c = small_config()) : cfg(std::move(c)), rules(cfg), conn(rules) {}

    Action open(std::int64_t t = 0) {
        now = t;
        return last = conn.open(now);
    }
    Action in(const std::string& bytes) { return last = conn.on({Kind::input, now, bytes}); }
    Action event(Kind k) { return last = conn.on({k, now}); }
    Action at(std::int64_t t, Kind k = Kind::timeout) {
        now = t;
        return event(k);
    }
    // The unsent output, concatenated.
    std::string pending() const {
        Connection::Slice s[Connection::max_slices];
        const std::size_t n = conn.output(s, Connection::max_slices);
        std::string out;
        for (std::size_t i = 0; i < n; ++i) out.append(s[i].data, s[i].size);
        return out;
    }
    // The kernel takes up to `max` bytes; returns them.
    std::string take(std::size_t max = SIZE_MAX) {
        std::string out = pending();
        if (out.size() > max) out.resize(max);
        last = conn.on({.kind = Kind::sent, .now_ms = now, .count = out.size()});
        written += out;
        return out;
    }
    // Takes output while the connection wants to write.
    std::string take_all() {
        std::string out;
        while (last == Action::write) out += take();
        return out;
    }

    Config cfg;
    ConnectionRules rules;
    Connection conn;
    std::int64_t now = 0;
    Action last = Action::close;
    std::string written;
};

std::size_t count(const std::string& hay, const std::string& needle) {
    std::size_t n = 0;
    for (std::size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
    return n;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

TEST_SUITE("connection") {

TEST_CASE("a GET is answered and the connection waits for the next request") {
    Peer p;
    CHECK(p.open(100) == Action::read);
    CHECK(p.conn.state() == State::idle);
    CHECK(p.conn.deadline_ms() == 100 + 1000);  // the first request within the header timeout
    CHECK(p.in(get) == Action::write);
    CHECK(p.conn.state() == State::writing);
    const std::string out = p.take();
    CHECK(starts_with(out, "HTTP/1.1 200 OK\r\n"));
    CHECK(out.find("\r\nContent-Length: 3\r\n") != std::string::npos);
    CHECK(out.substr(out.size() - 7) == "\r\n\r\nOK\n");
    CHECK(p.last == Action::read);
    CHECK(p.conn.state() == State::idle);
    CHECK(p.conn.answers() == 1);
    CHECK(p.conn.deadline_ms() == 100 + 3000);  // now the keep-alive timeout
    CHECK(p.conn.output_bytes() == 0);
}

TEST_CASE("pipelined requests are answered in order in one batch; HEAD has no body") {
    Peer p;
    p.open();
    CHECK(p.in(get + "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n" + get) == Action::write);
    const std::string out = p.take();
    CHECK(count(out, "HTTP/1.1 200 OK") == 3);
    CHECK(count(out, "OK\n") == 2);
    CHECK(p.conn.answers() == 3);
    CHECK(p.last == Action::read);
}

TEST_CASE("a huge pipelined input is answered in bounded batches, none lost") {
    Peer p;
    p.open();
    std::string many;
    constexpr int n = 5000;
    for (int i = 0; i < n; ++i) many += get;
    p.in(many);
    int batches = 0;
    while (p.last == Action::write) {
        CHECK(p.conn.output_bytes() <= Connection::batch_bytes_max + 512);
        p.take();
        ++batches;
    }
    CHECK(batches > 1);
    CHECK(count(p.written, "HTTP/1.1 200 OK") == n);
    CHECK(p.conn.answers() == n);
    CHECK(p.last == Action::read);
}

TEST_CASE("a request split at every byte is answered exactly once") {
    for (std::size_t cut = 1; cut < get.size(); ++cut) {
        CAPTURE(cut);
        Peer p;
        p.open();
        CHECK(p.in(get.substr(0, cut)) == Action::read);
        CHECK(p.conn.state() == State::head);
        CHECK(p.in(get.substr(cut)) == Action::write);
        CHECK(count(p.take(), "HTTP/1.1 200 OK") == 1);
    }
    Peer p;
    p.open();
    for (char ch : get) p.in(std::string(1, ch));
    CHECK(count(p.take_all(), "HTTP/1.1 200 OK") == 1);
}

TEST_CASE("a head trickled in byte by byte past max-head gets 431") {
    Config c = small_config();
    c.max_head = 8000;
    Peer p(c);
    p.open();
    p.in("GET / HTTP/1.1\r\n");
    std::size_t sent = 16;
    while (p.last == Action::read && sent < 9000) {
        p.in(sent % 60 == 0 ? "\r\nX: " : "a");
        ++sent;
    }
    CHECK(p.last == Action::write);
    CHECK(starts_with(p.pending(), "HTTP/1.1 431 "));
    CHECK(sent <= 8001);
}

TEST_CASE("a partial write keeps the rest, and the slices are the unsent tail") {
    Peer p;
    p.open();
    p.in(get + get);
    const std::string all = p.pending();
    const std::string first = p.take(10);
    CHECK(first == all.substr(0, 10));
    CHECK(p.last == Action::write);
    CHECK(p.conn.output_bytes() == all.size() - 10);
    CHECK(p.pending() == all.substr(10));
    p.take();
    CHECK(p.written == all);
    CHECK(p.last == Action::read);
}

TEST_CASE("a large body is referenced from the shared answer, not copied") {
    Config c = small_config();
    c.response.body = std::string(100 * 1024, 'b');
    Peer p(c);
    p.open();
    p.in(get);
    Connection::Slice s[Connection::max_slices];
    const std::size_t n = p.conn.output(s, Connection::max_slices);
    const auto& shared = p.rules.responses.answer(okserve::http::Framing::keep_alive, false).body;
    bool referenced = false;
    for (std::size_t i = 0; i < n; ++i) referenced = referenced || s[i].data == shared.data();
    CHECK(referenced);
    p.take(1000);  // part of the head: the body is still the shared one
    CHECK(p.pending().size() == p.conn.output_bytes());
    p.take_all();
    CHECK(p.written.size() > 100 * 1024);
    CHECK(p.written.substr(p.written.size() - 100 * 1024) == c.response.body);
}

TEST_CASE("Connection: close is answered, then the connection closes") {
    Peer p;
    p.open();
    p.in("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(p.conn.state() == State::closing);
    CHECK(p.take().find("\r\nConnection: close\r\n") != std::string::npos);
    CHECK(p.last == Action::close);
    CHECK(p.conn.outcome() == Outcome::answered);
}

TEST_CASE("bytes after a closing request make it linger instead of resetting") {
    Peer p;
    p.open();
    p.in("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n");
    CHECK(count(p.take(), "HTTP/1.1 200") == 1);
    CHECK(p.last == Action::linger);
    CHECK(p.conn.action() == Action::read);  // after the shutdown, read and discard
    CHECK(p.conn.state() == State::lingering);
    CHECK(p.conn.deadline_ms() == 0 + 500);
    CHECK(p.in("more bytes, discarded") == Action::read);
    CHECK(p.event(Kind::eof) == Action::close);
    CHECK(p.conn.outcome() == Outcome::answered);
}

TEST_CASE("HTTP/1.0, --close and --max-requests frame the last answer with close") {
    SUBCASE("HTTP/1.0 without keep-alive") {
        Peer p;
        p.open();
        p.in("GET / HTTP/1.0\r\n\r\n");
        CHECK(p.take().find("Connection: close") != std::string::npos);
        CHECK(p.last == Action::close);
    }
    SUBCASE("HTTP/1.0 with keep-alive") {
        Peer p;
        p.open();
        p.in("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        CHECK(p.take().find("Connection: keep-alive") != std::string::npos);
        CHECK(p.last == Action::read);
    }
    SUBCASE("--close") {
        Config c = small_config();
        c.close = true;
        Peer p(c);
        p.open();
        p.in(get);
        CHECK(p.take().find("Connection: close") != std::string::npos);
        CHECK(p.last == Action::close);
    }
    SUBCASE("--max-requests 2") {
        Config c = small_config();
        c.max_requests = 2;
        Peer p(c);
        p.open();
        p.in(get);
        CHECK(p.take().find("Connection: close") == std::string::npos);
        p.in(get + get);
        const std::string out = p.take_all();
        CHECK(count(out, "HTTP/1.1 200") == 1);  // the third request is never answered
        CHECK(out.find("Connection: close") != std::string::npos);
        CHECK(p.last == Action::linger);         // it was unread input: no reset
        CHECK(p.conn.answers() == 2);
    }
}

TEST_CASE("a malformed request gets 400, then a linger, counted as an error") {
    Peer p;
    p.open();
    p.in("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n");
    CHECK(p.conn.state() == State::closing);
    CHECK(starts_with(p.take(), "HTTP/1.1 400 "));
    CHECK(p.last == Action::linger);
    CHECK(p.event(Kind::eof) == Action::close);
    CHECK(p.conn.outcome() == Outcome::errors);
}

TEST_CASE("Expect: 100-continue is answered before the body arrives") {
    Peer p;
    p.open();
    p.in("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    CHECK(p.last == Action::write);
    CHECK(p.take() == "HTTP/1.1 100 Continue\r\n\r\n");
    CHECK(p.last == Action::read);
    CHECK(p.conn.state() == State::body);
    p.in("hello");
    CHECK(starts_with(p.take(), "HTTP/1.1 200 OK"));
}

TEST_CASE("timers: each state has its own deadline and its own ending") {
    SUBCASE("a connection that never sends: header timeout from the accept, no answer") {
        Peer p;
        p.open(10);
        CHECK(p.at(1009) == Action::read);  // early: nothing happens
        CHECK(p.at(1010) == Action::close);
        CHECK(p.written.empty());
        CHECK(p.conn.outcome() == Outcome::timed_out);
    }
    SUBCASE("idle keep-alive: closes silently, counted answered") {
        Peer p;
        p.open(0);
        p.now = 50;
        p.in(get);
        p.take();
        CHECK(p.conn.deadline_ms() == 50 + 3000);
        CHECK(p.at(3049) == Action::read);
        CHECK(p.at(3050) == Action::close);
        CHECK(p.conn.outcome() == Outcome::answered);
        CHECK(count(p.written, "HTTP/1.1") == 1);
    }
    SUBCASE("mid-head: the header timeout runs from the request's first byte, then 408") {
        Peer p;
        p.open(0);
        p.in(get);
        p.take();
        p.now = 2000;
        p.in("GET / HT");
        CHECK(p.conn.state() == State::head);
        CHECK(p.conn.deadline_ms() == 2000 + 1000);
        p.now = 2500;
        p.in("TP/1.1\r\n");  // more bytes do not move it
        CHECK(p.conn.deadline_ms() == 3000);
        CHECK(p.at(3000) == Action::write);
        CHECK(starts_with(p.take(), "HTTP/1.1 408 "));
        CHECK(p.last == Action::linger);
        CHECK(p.at(3000 + 500) == Action::close);  // the linger timeout
        CHECK(p.conn.outcome() == Outcome::timed_out);
    }
    SUBCASE("mid-body: the body timeout runs from the last body byte") {
        Peer p;
        p.open(0);
        p.in("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab");
        CHECK(p.conn.state() == State::body);
        CHECK(p.conn.deadline_ms() == 0 + 2000);
        p.now = 1500;
        p.in("cd");
        CHECK(p.conn.deadline_ms() == 1500 + 2000);
        CHECK(p.at(3499) == Action::read);
        CHECK(p.at(3500) == Action::write);
        CHECK(starts_with(p.take(), "HTTP/1.1 408 "));
        p.event(Kind::eof);
        CHECK(p.conn.outcome() == Outcome::timed_out);
    }
    SUBCASE("a write the client does not take: write timeout from the last progress") {
        Peer p;
        p.open(0);
        p.in(get);
        CHECK(p.conn.deadline_ms() == 4000);
        p.now = 1000;
        p.take(5);
        CHECK(p.conn.deadline_ms() == 1000 + 4000);
        CHECK(p.at(4999) == Action::write);
        CHECK(p.at(5000) == Action::close);
        CHECK(p.conn.outcome() == Outcome::timed_out);
    }
}

TEST_CASE("an empty line after a request keeps the connection idle: no 408 at the timeout") {
    Peer p;
    p.open(0);
    p.in("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok\r\n");
    p.take();
    CHECK(p.conn.state() == State::idle);
    CHECK(p.at(3000) == Action::close);
    CHECK(p.written.find("408") == std::string::npos);
    CHECK(p.conn.outcome() == Outcome::answered);
}

TEST_CASE("drain and evict") {
    SUBCASE("drain closes an idle connection at once") {
        Peer p;
        p.open();
        p.in(get);
        p.take();
        CHECK(p.event(Kind::drain) == Action::close);
        CHECK(p.conn.outcome() == Outcome::answered);
    }
    SUBCASE("drain mid-request: the answer says close") {
        Peer p;
        p.open();
        p.in("GET / HTTP/1.1\r\n");
        CHECK(p.event(Kind::drain) == Action::read);
        p.in("Host: x\r\n\r\n");
        CHECK(p.take().find("Connection: close") != std::string::npos);
        CHECK(p.last == Action::close);
    }
    SUBCASE("drain while a keep-alive answer is being written: closes once it is out") {
        Peer p;
        p.open();
        p.in(get);
        CHECK(p.event(Kind::drain) == Action::write);  // told once, mid-write
        p.take();
        CHECK(p.last == Action::close);  // not idle until the keep-alive timeout
        CHECK(p.conn.outcome() == Outcome::answered);
    }
    SUBCASE("evict closes an idle keep-alive connection and leaves a busy one alone") {
        Peer idle;
        idle.open();
        idle.in(get);
        idle.take();
        CHECK(idle.conn.reusable_idle());
        CHECK(idle.event(Kind::evict) == Action::close);
        CHECK(idle.conn.outcome() == Outcome::answered);
        Peer busy;
        busy.open();
        busy.in("GET / HTTP/1.1\r\n");
        CHECK_FALSE(busy.conn.reusable_idle());
        CHECK(busy.event(Kind::evict) == Action::read);
        Peer fresh;
        fresh.open();
        CHECK_FALSE(fresh.conn.reusable_idle());  // never answered: not a keep-alive one
    }
}

TEST_CASE("EOF and failures") {
    SUBCASE("EOF while answers are pending: they are still written, then close") {
        Peer p;
        p.open();
        p.in(get);
        CHECK(p.event(Kind::eof) == Action::write);
        CHECK(starts_with(p.take(), "HTTP/1.1 200"));
        CHECK(p.last == Action::close);
        CHECK(p.conn.outcome() == Outcome::answered);
    }
    SUBCASE("EOF before any answer: closed by the client") {
        Peer p;
        p.open();
        p.in("GET / HT");
        CHECK(p.event(Kind::eof) == Action::close);
        CHECK(p.conn.outcome() == Outcome::closed_by_client);
    }
    SUBCASE("a reset after answers is answered; an unexpected error is an error") {
        Peer p;
        p.open();
        p.in(get);
        p.take();
        CHECK(p.conn.on({.kind = Kind::failed, .now_ms = 0, .client_gone = true}) == Action::close);
        CHECK(p.conn.outcome() == Outcome::answered);
        Peer q;
        q.open();
        CHECK(q.conn.on({.kind = Kind::failed, .now_ms = 0, .client_gone = false}) == Action::close);
        CHECK(q.conn.outcome() == Outcome::errors);
    }
}

TEST_CASE("reject answers 503 with Retry-After, lingers, and counts rejected") {
    Peer p;
    p.now = 0;
    p.last = p.conn.reject(0);
    CHECK(p.last == Action::write);
    const std::string out = p.take();
    CHECK(starts_with(out, "HTTP/1.1 503 "));
    CHECK(out.find("Retry-After: 1\r\n") != std::string::npos);
    CHECK(p.last == Action::linger);
    CHECK(p.at(500) == Action::close);
    CHECK(p.conn.outcome() == Outcome::rejected);
}

TEST_CASE("a closed connection stays closed, and open() starts afresh") {
    Peer p;
    p.open();
    p.in("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n");
    p.take();
    p.event(Kind::eof);
    REQUIRE(p.conn.state() == State::closed);
    CHECK(p.in(get) == Action::close);
    CHECK(p.event(Kind::timeout) == Action::close);
    CHECK(p.open(7) == Action::read);
    CHECK(p.conn.answers() == 0);
    CHECK(p.in(get) == Action::write);
    CHECK(starts_with(p.take(), "HTTP/1.1 200"));
    CHECK(p.conn.outcome() == Outcome::answered);
}

}  // TEST_SUITE
