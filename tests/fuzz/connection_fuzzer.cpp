// Fuzz target for the connection state machine. The input is the client's byte stream; a
// schedule derived from it cuts that stream into chunks, takes the output in arbitrary
// pieces and mixes in timeouts, drains and evictions. Whatever happens, everything the
// connection writes must be well-framed HTTP/1.1. Built with -DOKSERVE_FUZZER it is a
// libFuzzer harness (`make fuzz`); otherwise a unit test replaying the corpus.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "server/connection.hpp"

namespace {

using okserve::Config;
using okserve::Connection;
using okserve::ConnectionRules;
using Action = Connection::Action;
using Kind = Connection::Event::Kind;

// A small deterministic generator, seeded from the input, for the schedule.
struct Schedule {
    std::uint64_t x;
    std::uint32_t next(std::uint32_t bound) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return bound == 0 ? 0 : static_cast<std::uint32_t>(x % bound);
    }
};

std::uint64_t seed_of(std::string_view input) {
    std::uint64_t h = 1469598103934665603ull;
    for (char c : input) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    return h | 1;
}

// Reads what a server wrote as a stream of responses. Returns false at the first thing a
// client could not frame. A response whose Content-Length is followed directly by the next
// status line (or the end) is taken as an answer to HEAD: bodies here never start so.
struct Framing {
    int finals = 0;       // final responses
    int non_200 = 0;      // of which not 200 (nor 429)
    int limited = 0;      // 429s (--rate-limit): they keep the connection
    bool closed = false;  // one said Connection: close
};

bool check_stream(std::string_view s, Framing& f) {
    while (!s.empty()) {
        if (f.closed) return false;  // bytes after a closing answer
        if (s.substr(0, 9) != "HTTP/1.1 " || s.size() < 13) return false;
        const std::string_view code = s.substr(9, 3);
        for (char c : code)
            if (c < '0' || c > '9') return false;
        const std::size_t end = s.find("\r\n\r\n");
        if (end == std::string_view::npos) return false;
        const std::string_view head = s.substr(0, end + 2);
        s.remove_prefix(end + 4);
        if (code == "100") {
            if (head != "HTTP/1.1 100 Continue\r\n") return false;
            continue;
        }
        ++f.finals;
        if (code == "429") ++f.limited;
        else if (code != "200") ++f.non_200;
        if (head.find("\r\nConnection: close\r\n") != std::string_view::npos) f.closed = true;
        const std::size_t cl = head.find("\r\nContent-Length: ");
        if (cl == std::string_view::npos) return false;  // every answer here has one
        std::size_t n = 0;
        for (std::size_t i = cl + 18; i < head.size() && head[i] != '\r'; ++i) n = n * 10 + static_cast<std::size_t>(head[i] - '0');
        const bool head_only = s.empty() || s.substr(0, 9) == "HTTP/1.1 ";
        if (head_only) continue;
        if (s.size() < n) return false;
        s.remove_prefix(n);
    }
    return true;
}

struct Run {
    bool sane = true;
    int answers = 0;
};

// Drives one connection through the input. Output is always taken in the end (the
// schedule never lets a write time out), so the stream written is whole.
Run fuzz_one(std::string_view input) {
    Config cfg;
    const unsigned char knobs = input.empty() ? 0 : static_cast<unsigned char>(input[0]);
    cfg.close = knobs & 1;
    cfg.max_requests = (knobs & 2) ? 3 : 0;
    cfg.max_head = (knobs & 4) ? 128 : 8192;
    cfg.max_body = (knobs & 8) ? 64 : UINT64_MAX;
    if (knobs & 16) {  // a rate limit the schedule's clock runs into: some answers are 429s
        cfg.rate_limit = 500;
        cfg.rate_burst = 2;
    }
    const ConnectionRules rules(cfg);
    Connection c(rules);
    Schedule sched{seed_of(input)};
    std::int64_t now = 0;
    std::string written;
    std::size_t at = input.empty() ? 0 : 1;
    Action a = c.open(now);
    bool drained = false;
    Run run;
    const auto sane_output = [&] {
        Connection::Slice slices[Connection::max_slices];
        const std::size_t n = c.output(slices, Connection::max_slices);
        std::size_t total = 0;
        for (std::size_t i = 0; i < n; ++i) total += slices[i].size;
        return total == c.output_bytes();
    };
    for (int step = 0; step < 20000 && a != Action::close; ++step) {
        if (!sane_output()) return {false, 0};
        if (a == Action::linger) a = Action::read;  // the adapter shuts the write side
        const std::uint32_t roll = sched.next(16);
        if (roll == 0 && !drained) {
            drained = true;
            a = c.on({Kind::drain, now});
        } else if (roll == 1) {
            a = c.on({Kind::evict, now});
        } else if (roll == 2 && a == Action::read) {
            now = c.deadline_ms();  // the clock reaches the deadline
            a = c.on({Kind::timeout, now});
        } else if (a == Action::write) {
            Connection::Slice slices[Connection::max_slices];
            const std::size_t n = c.output(slices, Connection::max_slices);
            std::string out;
            for (std::size_t i = 0; i < n; ++i) out.append(slices[i].data, slices[i].size);
            const std::size_t take = 1 + sched.next(static_cast<std::uint32_t>(out.size()));
            written.append(out, 0, take);
            now += sched.next(3);
            a = c.on({.kind = Kind::sent, .now_ms = now, .count = take});
        } else if (at < input.size()) {
            const std::size_t len = std::min<std::size_t>(1 + sched.next(64), input.size() - at);
            now += sched.next(3);
            a = c.on({Kind::input, now, input.substr(at, len)});
            at += len;
        } else {
            a = c.on({Kind::eof, now});
        }
        if (a != Action::read && a != Action::write && a != Action::linger && a != Action::close) return {false, 0};
    }
    if (a != Action::close) return {false, 0};
    // Closed stays closed.
    if (c.on({Kind::input, now, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"}) != Action::close) return {false, 0};
    Framing f;
    if (!check_stream(written, f)) return {false, 0};
    // Every 200 and 429 is an answer counted (the 429s apart too); at most one error
    // answer, and it is the last.
    const int answers = static_cast<int>(c.answers());
    run.sane = f.finals - f.non_200 == answers && f.limited == static_cast<int>(c.limited()) && f.non_200 <= 1;
    run.answers = answers;
    return run;
}

}  // namespace

#ifdef OKSERVE_FUZZER

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    if (!fuzz_one(input).sane) __builtin_trap();
    return 0;
}

#else

#include <doctest/doctest.h>

#include "tests/fuzz/corpus_files.hpp"

TEST_SUITE("fuzz") {

TEST_CASE("the fuzz corpus drives the connection to well-framed answers") {
    const auto corpus = okserve::fuzz::corpus_files();
    REQUIRE_MESSAGE(corpus.size() >= 10, "run from the repository root");
    int answered = 0;
    for (const auto& [path, bytes] : corpus) {
        CAPTURE(path);
        const Run r = fuzz_one(bytes);
        CHECK(r.sane);
        answered += r.answers;
    }
    CHECK(answered > 0);
}

TEST_CASE("the framing check rejects what a client could not frame") {
    Framing f;
    CHECK(check_stream("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nOK\n", f));
    Framing g;
    CHECK_FALSE(check_stream("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nOK\n", g));  // short body
    Framing h;
    CHECK_FALSE(check_stream("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n", h));
    Framing i;
    CHECK_FALSE(check_stream("garbage", i));
}

}  // TEST_SUITE

#endif
