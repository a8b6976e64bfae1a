// The socket driver over a real AF_UNIX socketpair: one turn at a time, as a mode would
// run it, with this thread (or a helper thread) playing the client on the other end.
#include <doctest/doctest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>

#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "server/sys/fd.hpp"
#include "tests/server/test_connection_support.hpp"

namespace okserve {
namespace {

using test::without_dates;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto hang_limit = 20s;  // only a hang reaches it; it turns the hang into a failure
constexpr std::string_view get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

// Both ends non-blocking: `server` is the driver's, `client` the test's.
struct Pair {
    Pair() {
        int sv[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
        server.reset(sv[0]);
        client.reset(sv[1]);
    }
    Fd server, client;
};

bool wait_for(int fd, short events) {
    pollfd p{fd, events, 0};
    return ::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(hang_limit).count())) == 1;
}

// Writes all of `bytes`, waiting for room as needed.
void send_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n > 0) {
            bytes.remove_prefix(static_cast<std::size_t>(n));
        } else if (!(n < 0 && errno == EAGAIN && wait_for(fd, POLLOUT))) {
            FAIL("send failed or hung, errno " << errno);
        }
    }
}

// What can be read now without waiting; `eof` is set when the peer has shut its side.
std::string read_now(int fd, bool* eof = nullptr) {
    std::string out;
    char buf[64 * 1024];
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) {
            out.append(buf, static_cast<std::size_t>(n));
            continue;
        }
        if (eof != nullptr) *eof = n == 0;
        return out;
    }
}

// Everything until the peer shuts its side; fails on a hang.
std::string read_until_eof(int fd) {
    std::string out;
    bool eof = false;
    while (!eof) {
        if (!wait_for(fd, POLLIN)) FAIL("no EOF from the server");
        out += read_now(fd, &eof);
    }
    return out;
}

TEST_SUITE("driver") {

TEST_CASE("a request is answered in one turn, which then waits to read") {
    test::Rig r;
    Pair p;
    send_all(p.client.get(), get);
    CHECK(drive(r.conn, p.server.get(), r.conn.open(0), 0, false) == Turn::wait_readable);
    CHECK(r.conn.answers() == 1);
    CHECK(r.conn.state() == Connection::State::idle);
    const std::string one = without_dates(read_now(p.client.get()));
    CHECK(one.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(one == test::text_of(r.rules.responses.answer(http::Framing::keep_alive, false)));

    send_all(p.client.get(), std::string(get) + std::string(get));  // two more, pipelined
    CHECK(resume(r.conn, p.server.get(), 10, false) == Turn::wait_readable);
    CHECK(without_dates(read_now(p.client.get())) == one + one);
    CHECK(r.conn.answers() == 3);

    // The peer shuts its side after a request: with peer_closed the same turn reads on
    // to the EOF; without it the turn stops after the short read and the next finds it.
    for (const bool peer_closed : {true, false}) {
        CAPTURE(peer_closed);
        test::Rig q;
        Pair s;
        send_all(s.client.get(), get);
        REQUIRE(::shutdown(s.client.get(), SHUT_WR) == 0);
        Turn t = drive(q.conn, s.server.get(), q.conn.open(0), 0, peer_closed);
        if (!peer_closed) {
            CHECK(t == Turn::wait_readable);
            t = resume(q.conn, s.server.get(), 1, false);
        }
        CHECK(t == Turn::closed);
        CHECK(q.conn.outcome() == Outcome::answered);
        s.server.reset();  // as the mode does on Turn::closed
        CHECK(without_dates(read_until_eof(s.client.get())) == one);
    }
}

TEST_CASE("answers the peer does not read: wait_writable; as it reads, resume() sends every one") {
    Config cfg = test::test_config();
    cfg.response.body = std::string(64 * 1024, 'w');  // shared, not copied: only the socket limits
    test::Rig r(cfg);
    Pair p;
    const int small = 32 * 1024;
    REQUIRE(::setsockopt(p.server.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
    constexpr std::size_t n = 20;
    std::string requests;
    for (std::size_t i = 0; i < n; ++i) requests += get;
    send_all(p.client.get(), requests);

    Turn t = drive(r.conn, p.server.get(), r.conn.open(0), 0, false);
    CHECK(t == Turn::wait_writable);
    CHECK(r.conn.action() == Connection::Action::write);
    std::string got;
    std::size_t turns = 1;
    while (t == Turn::wait_writable && turns < 100'000) {
        REQUIRE(wait_for(p.client.get(), POLLIN));
        got += read_now(p.client.get());
        t = resume(r.conn, p.server.get(), 1, false);
        ++turns;
    }
    got += read_now(p.client.get());
    CHECK(t == Turn::wait_readable);
    CHECK(turns > 2);
    const std::string one = test::text_of(r.rules.responses.answer(http::Framing::keep_alive, false));
    const std::string all = without_dates(got);
    CHECK(test::count_of(all, "HTTP/1.1 200 OK\r\n") == n);
    CHECK(all.size() == n * one.size());
    std::size_t whole = 0;  // answers received intact, in their places
    for (std::size_t i = 0; i < n; ++i) whole += all.compare(i * one.size(), one.size(), one) == 0;
    CHECK(whole == n);
    CHECK(r.conn.answers() == n);
}

// Keeps the client's socket full of body bytes from its own thread. It starts held; while
// held it writes nothing, so the bytes the server has read can be counted.
class Flooder {
public:
    explicit Flooder(int fd) : fd_(fd), thread_([this] { run(); }) {}
    ~Flooder() {
        stop_.store(true);
        thread_.join();
    }
    // Lets the writer go on, and waits until it has filled the socket.
    void release() {
        const std::uint64_t before = fulls_.load();
        hold_.store(false);
        const auto give_up = Clock::now() + hang_limit;
        while (fulls_.load() == before) {
            if (Clock::now() > give_up) FAIL("the writer did not fill the socket");
            std::this_thread::yield();
        }
    }
    // Holds the writer still; returns the bytes written so far.
    std::uint64_t hold() {
        hold_.store(true);
        const auto give_up = Clock::now() + hang_limit;
        while (!held_.load()) {
            if (Clock::now() > give_up) FAIL("the writer did not stop");
            std::this_thread::yield();
        }
        return written_.load();
    }

private:
    void run() {
        const std::string chunk(16 * 1024, 'u');
        while (!stop_.load()) {
            if (hold_.load()) {
                held_.store(true);
                while (hold_.load() && !stop_.load()) std::this_thread::yield();
                held_.store(false);
                continue;  // looks at hold_ again before it writes
            }
            // Spins on a full socket: a poll would sleep until it is three quarters empty.
            const ssize_t n = ::send(fd_, chunk.data(), chunk.size(), MSG_NOSIGNAL);
            if (n > 0) written_.fetch_add(static_cast<std::uint64_t>(n));
            else if (errno == EAGAIN) fulls_.fetch_add(1);
            else return;
        }
    }

    int fd_;
    std::atomic<bool> stop_{false}, hold_{true}, held_{false};
    std::atomic<std::uint64_t> written_{0}, fulls_{0};
    std::thread thread_;
};

std::uint64_t queued(int fd) {
    int n = 0;
    REQUIRE(::ioctl(fd, SIOCINQ, &n) == 0);
    return static_cast<std::uint64_t>(n);
}

TEST_CASE("a client that keeps the socket full is cut off near the turn budget: yielded") {
    test::Rig r;
    Pair p;
    // As much room as the system allows (the default holds about 200 KiB): the more the
    // socket holds, the less the turn depends on the writer keeping pace.
    const int room = 1 << 20;
    if (::setsockopt(p.client.get(), SOL_SOCKET, SO_SNDBUFFORCE, &room, sizeof room) != 0) {
        ::setsockopt(p.client.get(), SOL_SOCKET, SO_SNDBUF, &room, sizeof room);
    }
    int got = 0;
    socklen_t len = sizeof got;
    REQUIRE(::getsockopt(p.client.get(), SOL_SOCKET, SO_SNDBUF, &got, &len) == 0);
    const bool small = static_cast<std::size_t>(got) < turn_budget_bytes + 2 * read_chunk;
    if (small && std::thread::hardware_concurrency() < 2) {
        // Then a turn meets an empty socket unless the writer runs while it reads.
        WARN_MESSAGE(false, "one CPU and a small socket buffer: a full socket cannot be kept full here");
        return;
    }
    const std::string head = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n";
    send_all(p.client.get(), head);
    r.conn.open(0);
    Flooder flood(p.client.get());
    std::uint64_t read_before = 0;
    bool yielded = false;
    // A turn that meets a short read (the writer fell behind) waits instead: try again.
    for (int turn = 0; turn < 1'000 && !yielded; ++turn) {
        CAPTURE(turn);
        flood.release();
        const Turn t = resume(r.conn, p.server.get(), turn, false);
        const std::uint64_t read_after = flood.hold() + head.size() - queued(p.server.get());
        const std::uint64_t in_turn = read_after - read_before;
        read_before = read_after;
        CAPTURE(in_turn);
        CHECK(in_turn < turn_budget_bytes + read_chunk);  // never an endless turn
        REQUIRE(t != Turn::closed);
        yielded = t == Turn::yielded;
        if (yielded) CHECK(in_turn >= turn_budget_bytes);
        else CHECK(t == Turn::wait_readable);
    }
    CHECK(yielded);
    CHECK(r.conn.state() == Connection::State::body);
    CHECK(r.conn.action() == Connection::Action::read);
}

TEST_CASE("an error answer lingers: the peer sees the answer and EOF, its later bytes are read") {
    struct Row {
        const char* name;
        std::string_view input;
        bool timeout;  // the deadline passes before the head is whole
        http::Status status;
        Outcome outcome;
    };
    const Row rows[] = {
        {"malformed", "BREW\r\n\r\n", false, http::Status::bad_request, Outcome::errors},
        {"header timeout", "GET / HTTP/1.1\r\nHo", true, http::Status::request_timeout, Outcome::timed_out},
    };
    for (const Row& row : rows) {
        CAPTURE(row.name);
        test::Rig r;
        Pair p;
        send_all(p.client.get(), row.input);
        Turn t = drive(r.conn, p.server.get(), r.conn.open(0), 0, false);
        if (row.timeout) {
            CHECK(t == Turn::wait_readable);
            CHECK(r.conn.state() == Connection::State::head);
            const Connection::Event e{Connection::Event::Kind::timeout, r.conn.deadline_ms()};
            t = drive_event(r.conn, p.server.get(), e);
        }
        CHECK(t == Turn::wait_readable);
        CHECK(r.conn.state() == Connection::State::lingering);
        // shutdown(SHUT_WR) happened: the client reads the whole answer, then EOF.
        CHECK(without_dates(read_until_eof(p.client.get())) ==
              test::text_of(r.rules.responses.error(row.status)));
        send_all(p.client.get(), "ignored");
        CHECK(resume(r.conn, p.server.get(), 2'000, false) == Turn::wait_readable);
        CHECK(queued(p.server.get()) == 0);  // read and dropped
        REQUIRE(::shutdown(p.client.get(), SHUT_WR) == 0);
        CHECK(resume(r.conn, p.server.get(), 2'001, false) == Turn::closed);
        CHECK(r.conn.outcome() == row.outcome);
    }
}

}  // TEST_SUITE

}  // namespace
}  // namespace okserve
