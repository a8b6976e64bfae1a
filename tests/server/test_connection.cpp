// The connection state machine without sockets: bytes and events in, actions and answer
// bytes out, the clock given as plain numbers. Every timer runs off test_config()'s
// timeouts (header 1s, body 2s, keep-alive 3s, write 4s, linger 5s).
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "tests/server/test_connection_support.hpp"

namespace okserve {
namespace {

using test::Conn;
using test::without_dates;
using Action = Connection::Action;
using State = Connection::State;
using Kind = Connection::Event::Kind;
using http::Status;

constexpr std::string_view get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
constexpr std::string_view head_req = "HEAD /b HTTP/1.1\r\nHost: x\r\n\r\n";
constexpr std::string_view get_close = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
constexpr std::string_view post_5 = "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
const std::string close_field = "Connection: close\r\n";

// The default 200 as sent: `connection` is the Connection field line, if any.
std::string ok(std::string_view connection = "", bool head_only = false) {
    std::string s = "HTTP/1.1 200 OK\r\nDate: <date>\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    "Content-Length: 3\r\n";
    s.append(connection).append("\r\n");
    if (!head_only) s += "OK\n";
    return s;
}

std::string cat(std::initializer_list<std::string_view> parts) {
    std::string s;
    for (const std::string_view p : parts) s += p;
    return s;
}

TEST_SUITE("connection") {

TEST_CASE("a GET is answered: write a full 200, and once sent, read again idle") {
    Conn c;
    CHECK(c->action() == Action::read);
    CHECK(c->state() == State::idle);
    CHECK(c->deadline_ms() == 1'000);
    CHECK(c.in(get, 10) == Action::write);
    CHECK(c->state() == State::writing);
    CHECK(c->deadline_ms() == 10 + 4'000);
    const std::string raw = c.unsent();
    CHECK(c->output_bytes() == raw.size());
    CHECK(raw.find("Thu, 01 Jan 1970") == std::string::npos);  // the real date, not the placeholder
    CHECK(without_dates(raw) == ok());
    CHECK(c.sent(raw.size(), 20) == Action::read);
    CHECK(c->state() == State::idle);
    CHECK(c->output_bytes() == 0);
    CHECK(c->answers() == 1);
    CHECK(c->deadline_ms() == 20 + 3'000);
    CHECK(c.tell(Kind::eof, 30) == Action::close);
    CHECK(c->outcome() == Outcome::answered);
}

TEST_CASE("pipelined requests are answered in one batch, in order; HEAD gets no body") {
    Conn c;
    CHECK(c.in(cat({get, head_req, get}), 5) == Action::write);
    CHECK(c->answers() == 3);
    CHECK(c.flush(6) == ok() + ok("", true) + ok());
    CHECK(c.next == Action::read);
    CHECK(c->state() == State::idle);
}

TEST_CASE("5,000 pipelined requests in one input: batches near the batch limit, none lost") {
    Conn c;
    std::string input;
    for (int i = 0; i < 5'000; ++i) input += get;
    const std::size_t one = ok().size() - 6 + http::date_length;  // one answer's bytes
    Action a = c.in(input, 1);
    std::size_t batches = 0, seen = 0;
    while (a == Action::write && batches < 1'000) {
        CAPTURE(batches);
        const std::string out = c.unsent();
        CHECK(out.size() < Connection::batch_bytes_max + one);  // stops at the answer that reaches it
        const std::size_t in_batch = test::count_of(out, "HTTP/1.1 200 OK\r\n");
        CHECK(out.size() == in_batch * one);
        seen += in_batch;
        CHECK(c->answers() == seen);  // answered as written, not all at once
        if (seen < 5'000) CHECK(out.size() >= Connection::batch_bytes_max);
        ++batches;
        a = c.sent(out.size(), 2);
    }
    CHECK(a == Action::read);
    CHECK(batches > 1);
    CHECK(seen == 5'000);
    CHECK(c->answers() == 5'000);
    CHECK(c->state() == State::idle);
}

TEST_CASE("a request split at every byte, or sent a byte at a time, is answered exactly once") {
    const std::string_view chunked =
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    for (const std::string_view request : {get, post_5, chunked}) {
        CAPTURE(request);
        Conn c;
        for (std::size_t k = 1; k < request.size(); ++k) {
            CAPTURE(k);
            c->open(0);
            CHECK(c.in(request.substr(0, k), 1) == Action::read);
            CHECK(c->answers() == 0);
            CHECK(c.in(request.substr(k), 2) == Action::write);
            CHECK(c->answers() == 1);
            CHECK(c.flush(3) == ok());
        }
        c->open(0);
        std::size_t writes = 0;
        for (const char ch : request) writes += c.in({&ch, 1}, 1) == Action::write;
        CHECK(writes == 1);
        CHECK(c->answers() == 1);
        CHECK(c.flush(2) == ok());
    }
}

// A head of `size` bytes: one filler field, ending in the empty line unless `open_ended`.
std::string long_head(std::size_t size, bool open_ended = false) {
    std::string h = "GET / HTTP/1.1\r\nHost: x\r\nX-Fill: ";
    h.append(size - h.size() - (open_ended ? 0 : 4), 'f');
    if (!open_ended) h += "\r\n\r\n";
    return h;
}

// Feeds `bytes` one at a time while the action is read; returns how many went in.
std::size_t bytewise(Conn& c, std::string_view bytes) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);  // hang → failure
    std::size_t n = 0;
    while (n < bytes.size() && c->action() == Action::read) {
        c.in(bytes.substr(n++, 1), 1);
        if ((n & 0xffff) == 0 && std::chrono::steady_clock::now() > give_up) {
            FAIL("a head a byte at a time is taking far too long: quadratic work?");
        }
    }
    return n;
}

TEST_CASE("a head one byte at a time: answered at 8,000 bytes, 431 once it reaches max_head") {
    Conn c;
    REQUIRE(c.config.max_head == 8'192);
    CHECK(bytewise(c, long_head(8'000)) == 8'000);
    CHECK(c->answers() == 1);
    CHECK(c.flush(2) == ok());

    c->open(0);
    CHECK(bytewise(c, long_head(9'000, true)) == c.config.max_head);
    CHECK(c->state() == State::closing);
    CHECK(c->answers() == 0);
    CHECK(without_dates(c.unsent()) == c.error(Status::header_fields_too_large));
    CHECK(c.in("more", 2) == Action::write);  // input after the 431 is not parsed
    c.flush(3);
    CHECK(c.next == Action::linger);
    CHECK(c.tell(Kind::eof, 4) == Action::close);
    CHECK(c->outcome() == Outcome::errors);

    // Linear work: a 1 MiB head a byte at a time is a million small steps, not 5e11.
    Config big = test::test_config();
    big.max_head = 1 << 20;
    Conn wide(big);
    CHECK(bytewise(wide, long_head(big.max_head - 16)) == big.max_head - 16);
    CHECK(wide->answers() == 1);
}

TEST_CASE("a partial write keeps write, and output() is exactly the unsent tail") {
    for (const std::size_t body : {std::size_t{3}, std::size_t{100 * 1024}}) {
        CAPTURE(body);
        Config cfg = test::test_config();
        cfg.response.body = std::string(body, 'b');
        Conn c(cfg);
        const std::string two = cat({get, get});
        c.in(two, 0);
        const std::size_t size = c->output_bytes(), head = c.unsent().find("\r\n\r\n") + 4;
        for (const std::size_t k : {std::size_t{1}, head - 1, head, head + 1, size / 2, size - 1}) {
            CAPTURE(k);
            c->open(0);
            c.in(two, 0);
            const std::string before = c.unsent();
            CHECK(c.sent(k, 100) == Action::write);
            CHECK(c->deadline_ms() == 100 + 4'000);
            CHECK(c->output_bytes() == before.size() - k);
            CHECK(c.unsent() == before.substr(k));
            Connection::Slice one[1];
            REQUIRE(c->output(one, 1) == 1);
            CHECK(std::string(one[0].data, one[0].size) == before.substr(k, one[0].size));
            CHECK(c.sent(before.size() - k, 200) == Action::read);
            CHECK(c->answers() == 2);
        }
    }
}

TEST_CASE("a large body is sent from the shared answer, not copied") {
    Config cfg = test::test_config();
    cfg.response.body = std::string(100 * 1024, 'L');
    REQUIRE(cfg.response.body.size() > Connection::inline_body_max);
    Conn c(cfg);
    const std::string_view shared = c.rules.responses.answer(http::Framing::keep_alive, false).body;
    c.in(cat({get, head_req, get}), 0);
    Connection::Slice s[Connection::max_slices];
    // GET's head, the body, HEAD's head and the second GET's head in one slice, the body.
    REQUIRE(c->output(s, Connection::max_slices) == 4);
    CHECK(s[1].data == shared.data());
    CHECK(s[1].size == shared.size());
    CHECK(s[2].size < 1'000);
    CHECK(s[3].data == shared.data());
    CHECK(s[3].size == shared.size());
    CHECK(c->output_bytes() == s[0].size + s[1].size + s[2].size + s[3].size);
    c.sent(s[0].size + 1'000, 1);
    REQUIRE(c->output(s, Connection::max_slices) == 3);
    CHECK(s[0].data == shared.data() + 1'000);  // mid-body: still the shared bytes
    CHECK(s[0].size == shared.size() - 1'000);
    CHECK(s[2].data == shared.data());
}

TEST_CASE("Connection: close: the answer says so; close after it, or linger when bytes followed") {
    for (const bool trailing : {false, true}) {
        CAPTURE(trailing);
        Conn c;
        CHECK(c.in(trailing ? cat({get_close, get}) : std::string(get_close), 10) == Action::write);
        CHECK(c->state() == State::closing);
        CHECK(c.flush(20) == ok(close_field));
        if (trailing) {
            CHECK(c.next == Action::linger);
            CHECK(c->action() == Action::read);
            CHECK(c->state() == State::lingering);
            CHECK(c->deadline_ms() == 20 + 5'000);
            CHECK(c.in(get, 30) == Action::read);  // discarded
            CHECK(c->output_bytes() == 0);
            CHECK(c.tell(Kind::eof, 40) == Action::close);
        }
        CHECK(c.next == (trailing ? Action::linger : Action::close));
        CHECK(c->state() == State::closed);
        CHECK(c->outcome() == Outcome::answered);
        CHECK(c->answers() == 1);
    }
}

TEST_CASE("framing: HTTP/1.0, --close and --max-requests decide which answer closes") {
    struct Row {
        const char* name;
        bool close;
        std::uint64_t max_requests;
        std::string_view request;
        std::vector<std::string> answers;  // one request per answer
        Action last;
    };
    const std::string ka = "Connection: keep-alive\r\n";
    const Row rows[] = {
        {"1.0 without keep-alive", false, 0, "GET / HTTP/1.0\r\n\r\n", {ok(close_field)}, Action::close},
        {"1.0 with keep-alive", false, 0, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", {ok(ka), ok(ka)},
         Action::read},
        {"1.1 keeps alive", false, 0, get, {ok(), ok(), ok()}, Action::read},
        {"--close", true, 0, get, {ok(close_field)}, Action::close},
        {"max_requests 2", false, 2, get, {ok(), ok(close_field)}, Action::close},
    };
    for (const Row& row : rows) {
        CAPTURE(row.name);
        Config cfg = test::test_config();
        cfg.close = row.close;
        cfg.max_requests = row.max_requests;
        Conn c(cfg);
        for (const std::string& expected : row.answers) {
            REQUIRE(c.next == Action::read);
            CHECK(c.in(row.request, 1) == Action::write);
            CHECK(c.flush(2) == expected);
        }
        CHECK(c.next == row.last);
        CHECK(c->answers() == row.answers.size());
    }
}

TEST_CASE("a malformed request gets its 4xx, then the connection lingers; counted errors") {
    const std::pair<std::string_view, Status> rows[] = {
        {"\x16\x03\x01\x02\xfc\x03\x03", Status::bad_request},  // a TLS hello
        {"GET / HTTP/1.1\r\nHost x\r\n\r\n", Status::bad_request},
        {"GET / HTTP/2.0\r\n\r\n", Status::version_not_supported},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", Status::bad_request},
    };
    for (const auto& [input, status] : rows) {
        CAPTURE(input);
        Conn c;
        CHECK(c.in(input, 1) == Action::write);
        CHECK(c->state() == State::closing);
        CHECK(c.flush(2) == c.error(status));
        CHECK(c.next == Action::linger);
        CHECK(c->state() == State::lingering);
        CHECK(c.tell(Kind::eof, 3) == Action::close);
        CHECK(c->outcome() == Outcome::errors);
        CHECK(c->answers() == 0);
    }
}

TEST_CASE("Expect: 100-continue: 100 Continue before the body, the answer after it") {
    Conn c;
    CHECK(c.in("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", 10) ==
          Action::write);
    CHECK(c.unsent() == "HTTP/1.1 100 Continue\r\n\r\n");
    CHECK(c->answers() == 0);
    c.flush(20);
    CHECK(c.next == Action::read);
    CHECK(c->state() == State::body);
    CHECK(c->deadline_ms() == 20 + 2'000);
    CHECK(c.in("hel", 30) == Action::read);
    CHECK(c.in("lo", 40) == Action::write);
    CHECK(c.flush(50) == ok());
    CHECK(c->answers() == 1);
}

TEST_CASE("timers: each waiting state's deadline, exactly; early timeouts change nothing") {
    // One thing the client or the socket does: input, or `sent` bytes taken (all: npos).
    struct Step {
        std::int64_t now;
        std::string_view input;
        std::size_t sent = 0;
    };
    constexpr std::size_t all = std::string_view::npos;
    struct Row {
        const char* name;
        std::vector<Step> steps;  // leave the connection waiting for its deadline
        State waiting;
        std::int64_t deadline;
        Status answer;  // written at the deadline (then linger); none: the deadline closes
        Outcome outcome;
    };
    const std::string_view get_crlf = "GET / HTTP/1.1\r\nHost: x\r\n\r\n\r\n";
    const std::string_view body_10 = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc";
    const Row rows[] = {
        {"never sends: header timeout from open", {},
         State::idle, 1'000, Status::none, Outcome::timed_out},
        {"idle keep-alive: from the answer sent", {{10, get}, {20, "", all}},
         State::idle, 20 + 3'000, Status::none, Outcome::answered},
        {"mid-head: from the first byte, not the last", {{500, "GE"}, {1'400, "T / HTTP/1.1\r\nHo"}},
         State::head, 500 + 1'000, Status::request_timeout, Outcome::timed_out},
        {"mid-head after an answer", {{10, get}, {20, "", all}, {500, "GE"}, {1'400, "T / HTTP/1.1\r\nHo"}},
         State::head, 500 + 1'000, Status::request_timeout, Outcome::timed_out},
        {"mid-body: from the last body byte", {{100, body_10}, {1'500, "def"}},
         State::body, 1'500 + 2'000, Status::request_timeout, Outcome::timed_out},
        {"blocked write: from the last progress", {{0, get}, {3'000, "", 5}},
         State::writing, 3'000 + 4'000, Status::none, Outcome::timed_out},
        {"blocked last write: from the last progress", {{0, get_close}, {3'000, "", 5}},
         State::closing, 3'000 + 4'000, Status::none, Outcome::timed_out},
        {"lingering: from its start, not extended by input", {{0, "BREW\r\n\r\n"}, {10, "", all}, {3'000, "x"}},
         State::lingering, 10 + 5'000, Status::none, Outcome::errors},
        {"an empty line after a keep-alive request: idle, closed silently", {{10, get_crlf}, {20, "", all}},
         State::idle, 20 + 3'000, Status::none, Outcome::answered},
        {"empty lines later: idle, keep-alive again from them", {{10, get}, {20, "", all}, {500, "\r\n\r\n"}},
         State::idle, 500 + 3'000, Status::none, Outcome::answered},
    };
    for (const Row& row : rows) {
        CAPTURE(row.name);
        Conn c;
        for (const Step& step : row.steps) {
            if (!step.input.empty()) c.in(step.input, step.now);
            else c.sent(step.sent == all ? c->output_bytes() : step.sent, step.now);
        }
        CHECK(c->state() == row.waiting);
        CHECK(c->deadline_ms() == row.deadline);
        const Action a = c->action();
        const std::size_t out = c->output_bytes();
        CHECK(c.tell(Kind::timeout, row.deadline - 1) == a);
        CHECK(c->state() == row.waiting);
        CHECK(c->deadline_ms() == row.deadline);
        CHECK(c->output_bytes() == out);
        if (row.answer == Status::none) {
            CHECK(c.tell(Kind::timeout, row.deadline) == Action::close);  // nothing written
        } else {
            CHECK(c.tell(Kind::timeout, row.deadline) == Action::write);
            CHECK(c->state() == State::closing);
            CHECK(c.flush(row.deadline + 100) == c.error(row.answer));
            CHECK(c.next == Action::linger);
            CHECK(c->deadline_ms() == row.deadline + 100 + 5'000);
            CHECK(c.tell(Kind::timeout, c->deadline_ms()) == Action::close);
        }
        CHECK(c->state() == State::closed);
        CHECK(c->outcome() == row.outcome);
    }
}

TEST_CASE("drain: idle closes at once; a request under way is answered with Connection: close") {
    SUBCASE("idle before any request: closed, counted timed out (it sent nothing)") {
        Conn c;
        CHECK(c.tell(Kind::drain, 5) == Action::close);
        CHECK(c->outcome() == Outcome::timed_out);
    }
    SUBCASE("idle after an answer: closed, answered") {
        Conn c;
        c.in(get, 1);
        c.flush(2);
        CHECK(c.tell(Kind::drain, 5) == Action::close);
        CHECK(c->outcome() == Outcome::answered);
    }
    SUBCASE("mid-head and mid-body: the answer closes") {
        for (const std::size_t cut : {std::size_t{3}, post_5.size() - 2}) {
            CAPTURE(cut);
            Conn c;
            CHECK(c.in(post_5.substr(0, cut), 1) == Action::read);
            CHECK(c.tell(Kind::drain, 2) == Action::read);
            CHECK(c.in(post_5.substr(cut), 3) == Action::write);
            CHECK(c.flush(4) == ok(close_field));
            CHECK(c.next == Action::close);
            CHECK(c->outcome() == Outcome::answered);
        }
    }
    SUBCASE("while a keep-alive answer is being written: closes once it is sent") {
        // Modes tell a connection of the drain once; one that goes idle afterwards must
        // not wait there for the keep-alive timeout (longer than the drain timeout).
        Conn c;
        CHECK(c.in(get, 1) == Action::write);
        CHECK(c.tell(Kind::drain, 2) == Action::write);
        CHECK(c.flush(3) == ok());  // queued before the drain: its framing stays
        CHECK(c.next == Action::close);
        CHECK(c->outcome() == Outcome::answered);
    }
}

TEST_CASE("evict closes an idle keep-alive connection and nothing else") {
    Conn c;
    CHECK_FALSE(c->reusable_idle());
    CHECK(c.tell(Kind::evict, 1) == Action::read);  // no answer yet: not idle keep-alive
    CHECK(c.in(get, 2) == Action::write);
    CHECK(c.tell(Kind::evict, 3) == Action::write);
    c.flush(4);
    CHECK(c.in("GET", 5) == Action::read);
    CHECK_FALSE(c->reusable_idle());
    CHECK(c.tell(Kind::evict, 6) == Action::read);
    CHECK(c->state() == State::head);
    CHECK(c.in(" / HTTP/1.1\r\nHost: x\r\n\r\n", 7) == Action::write);
    c.flush(8);
    CHECK(c->reusable_idle());
    CHECK(c.tell(Kind::evict, 9) == Action::close);
    CHECK(c->outcome() == Outcome::answered);
    CHECK(c->answers() == 2);
}

TEST_CASE("EOF and socket failures: pending output is finished, outcomes follow what was answered") {
    struct Row {
        const char* name;
        std::string_view before;  // fed after open; a complete request is answered and sent
        Kind kind;
        bool client_gone;
        Outcome outcome;
    };
    const Row rows[] = {
        {"EOF idle, nothing asked", "", Kind::eof, false, Outcome::closed_by_client},
        {"EOF mid-head", "GET / HT", Kind::eof, false, Outcome::closed_by_client},
        {"EOF idle after an answer", get, Kind::eof, false, Outcome::answered},
        {"reset before any answer", "GET", Kind::failed, true, Outcome::closed_by_client},
        {"reset after an answer", get, Kind::failed, true, Outcome::answered},
        {"other failure, nothing asked", "", Kind::failed, false, Outcome::errors},
        {"other failure after an answer", get, Kind::failed, false, Outcome::errors},
    };
    for (const Row& row : rows) {
        CAPTURE(row.name);
        Conn c;
        if (!row.before.empty() && c.in(row.before, 1) == Action::write) c.flush(2);
        CHECK(c->on({.kind = row.kind, .now_ms = 3, .client_gone = row.client_gone}) == Action::close);
        CHECK(c->outcome() == row.outcome);
        CHECK(c->state() == State::closed);
    }

    Conn c;
    CHECK(c.in(get, 1) == Action::write);
    const std::string pending = c.unsent();
    CHECK(c.tell(Kind::eof, 2) == Action::write);  // the peer may still read
    CHECK(c.unsent() == pending);
    CHECK(c.flush(3) == ok());
    CHECK(c.next == Action::close);
    CHECK(c->outcome() == Outcome::answered);
}

TEST_CASE("reject: a 503 with Retry-After, then linger; counted rejected") {
    Conn c;
    CHECK(c->reject(0) == Action::write);
    CHECK(c->state() == State::closing);
    const std::string out = without_dates(c.unsent());
    CHECK(out == c.error(Status::service_unavailable));
    CHECK(out.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0);
    CHECK(out.find("\r\nRetry-After: 1\r\n") != std::string::npos);
    CHECK(out.find("\r\nConnection: close\r\n") != std::string::npos);
    c.flush(10);
    CHECK(c.next == Action::linger);
    CHECK(c->deadline_ms() == 10 + 5'000);
    CHECK(c.tell(Kind::eof, 20) == Action::close);
    CHECK(c->outcome() == Outcome::rejected);
    CHECK(c->answers() == 0);
}

TEST_CASE("open() after a connection ends, or in the middle of one, starts afresh") {
    Conn c;
    c.in("NOT HTTP\r\n\r\n", 1);
    c.flush(2);
    c.tell(Kind::eof, 3);
    REQUIRE(c->outcome() == Outcome::errors);
    CHECK(c.in(get, 4) == Action::close);  // closed stays closed

    CHECK(c->open(10'000) == Action::read);  // left mid-way: answers unsent, a head half there
    c.in(cat({get, get_close, "GET /half HT"}), 10'001);
    CHECK(c->output_bytes() > 0);

    CHECK(c->open(20'000) == Action::read);
    CHECK(c->state() == State::idle);
    CHECK(c->deadline_ms() == 20'000 + 1'000);
    CHECK(c->output_bytes() == 0);
    CHECK(c->answers() == 0);
    CHECK(c->outcome() == Outcome::answered);
    CHECK(c.in(get, 20'001) == Action::write);
    CHECK(c.flush(20'002) == ok());  // keep-alive again, one answer: nothing left over
    CHECK(c.next == Action::read);
    CHECK(c->answers() == 1);
}

}  // TEST_SUITE

}  // namespace
}  // namespace okserve
