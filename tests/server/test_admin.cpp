// What the admin listener is built from, without sockets: the latency histogram, the rate
// limiter, --work and --admin parsing, access-log lines, the Prometheus and JSON bodies,
// the load tester's parameters, and what the connection core reports for each of them.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "server/access_log.hpp"
#include "server/admin/load_runner.hpp"
#include "server/admin/metrics.hpp"
#include "server/latency_histogram.hpp"
#include "server/rate_limiter.hpp"
#include "server/sys/error.hpp"
#include "server/work.hpp"
#include "tests/server/test_connection_support.hpp"

using namespace okserve;
using namespace okserve::test;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

// A temporary file that is removed at the end of the test.
struct TempFile {
    char path[32] = "/tmp/okserve-access-XXXXXX";
    TempFile() {
        const int fd = ::mkstemp(path);
        REQUIRE(fd >= 0);
        ::close(fd);
    }
    ~TempFile() { ::unlink(path); }
};

std::string read_all(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

}  // namespace

TEST_SUITE("admin") {

TEST_CASE("latency histogram: every value lands in the bucket whose bounds hold it") {
    using H = LatencyHistogram;
    std::int64_t previous_upper = -1;
    for (std::size_t i = 0; i < H::fine_count; ++i) {
        const std::int64_t upper = H::fine_upper_ns(i);
        CAPTURE(i);
        REQUIRE(upper > previous_upper);  // contiguous, increasing
        CHECK(H::fine_index(upper) == i);
        CHECK(H::fine_index(previous_upper + 1) == i);
        if (i >= 16) CHECK(static_cast<double>(upper - previous_upper) / static_cast<double>(previous_upper + 1) <= 0.0626);
        previous_upper = upper;
    }
    CHECK(H::fine_index(-5) == 0);
    CHECK(H::fine_index(std::int64_t{1} << 40) == H::fine_count - 1);
    // Prometheus buckets: "le" is inclusive.
    CHECK(H::bucket_index(0) == 0);
    CHECK(H::bucket_index(25'000) == 1);
    CHECK(H::bucket_index(25'001) == 2);
    CHECK(H::bucket_index(10'000'000'000) == H::bounds_ns.size() - 1);
    CHECK(H::bucket_index(10'000'000'001) == H::bounds_ns.size());
}

TEST_CASE("figures: percentiles from the fine buckets, sums and differences of tallies") {
    Tally a, b;
    for (int i = 1; i <= 100; ++i) a.latency.record(i * 1'000);  // 1 µs .. 100 µs
    b.latency.record(5'000'000, 3);                               // three at 5 ms
    b.add(Tally::requests, 3);
    Figures f;
    f.add(a);
    CHECK(f.latency_count == 100);
    CHECK(f.latency_sum_ns == 5050 * 1'000);
    const std::int64_t p50 = f.percentile_ns(50), p99 = f.percentile_ns(99);
    CHECK(p50 >= 50'000);
    CHECK(p50 <= 53'125);  // at most one fine bucket (6.25%) above
    CHECK(p99 >= 99'000);
    CHECK(p99 <= 105'200);
    CHECK(f.percentile_ns(100) >= 100'000);
    Figures g = f;
    g.add(b);
    CHECK(g.get(Tally::requests) == 3);
    const Figures d = g.since(f);
    CHECK(d.latency_count == 3);
    CHECK(d.percentile_ns(50) >= 5'000'000);
    CHECK(d.percentile_ns(50) <= 5'312'500);
    CHECK(Figures{}.percentile_ns(99) == 0);
    // Prometheus buckets are not cumulative inside: 10 µs holds 1..10 µs.
    CHECK(f.buckets[0] == 10);
    CHECK(f.buckets[1] == 15);  // 11..25 µs
}

TEST_CASE("rate limiter: a burst, then one per interval") {
    RateLimiter r(10, 3);  // 100 ms apart, three at once
    const std::int64_t t0 = 1'000'000'000;
    CHECK(r.admit(t0));
    CHECK(r.admit(t0));
    CHECK(r.admit(t0));
    CHECK_FALSE(r.admit(t0));
    CHECK_FALSE(r.admit(t0 + 99'000'000));
    CHECK(r.admit(t0 + 100'000'000));
    CHECK_FALSE(r.admit(t0 + 100'000'000));
    CHECK(r.admit(t0 + 10'000'000'000));  // a long pause refills the bucket...
    CHECK(r.admit(t0 + 10'000'000'000));
    CHECK(r.admit(t0 + 10'000'000'000));
    CHECK_FALSE(r.admit(t0 + 10'000'000'000));  // ...to its size, not beyond
    CHECK(r.retry_after_s() == 1);
    CHECK(RateLimiter(0.25, 1).retry_after_s() == 4);
}

TEST_CASE("--work specs") {
    std::string why;
    auto w = parse_work("sleep:50ms", &why);
    REQUIRE(w);
    CHECK(w->kind == WorkSpec::Kind::sleep);
    CHECK_FALSE(w->exponential);
    CHECK(w->mean == std::chrono::milliseconds(50));
    CHECK(w->describe() == "sleep:50ms");
    w = parse_work("spin:exp:100us", &why);
    REQUIRE(w);
    CHECK(w->kind == WorkSpec::Kind::spin);
    CHECK(w->exponential);
    CHECK(w->mean == std::chrono::microseconds(100));
    CHECK(w->describe() == "spin:exp:100us");
    CHECK(parse_work("sleep:1.5s", &why)->mean == std::chrono::milliseconds(1500));
    for (const char* bad : {"", "sleep", "nap:1ms", "sleep:", "sleep:0ms", "sleep:-1ms", "spin:10", "spin:exp:", "sleep:2h",
                            "sleep:1msx"}) {
        CAPTURE(bad);
        why.clear();
        CHECK_FALSE(parse_work(bad, &why));
        CHECK_FALSE(why.empty());
    }
    // Spinning takes at least its time (a lower bound only: the machine may be slow).
    const auto t0 = std::chrono::steady_clock::now();
    perform_work(*parse_work("spin:2ms", &why), 2);
    CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(4));
}

TEST_CASE("--admin, --rate-limit and friends on the command line") {
    std::string host;
    std::uint16_t port = 0;
    parse_host_port("--admin", "127.0.0.1:9090", host, port);
    CHECK(host == "127.0.0.1");
    CHECK(port == 9090);
    parse_host_port("--admin", "[::1]:0", host, port);
    CHECK(host == "::1");
    CHECK(port == 0);
    for (const char* bad : {"9090", "127.0.0.1", ":9090", "127.0.0.1:", "127.0.0.1:99999", "::1:9090", "[::1]9090",
                            "a b:1", "127.0.0.1:x"}) {
        CAPTURE(bad);
        CHECK_THROWS_AS(parse_host_port("--admin", bad, host, port), UsageError);
    }
}

TEST_CASE("access log lines: common log format, escaped, '-' for no body") {
    std::string out;
    AccessLog::format(out, "127.0.0.1", 0, "GET / HTTP/1.1", 200, 3);
    CHECK(out == "127.0.0.1 - - [01/Jan/1970:00:00:00 +0000] \"GET / HTTP/1.1\" 200 3\n");
    out.clear();
    AccessLog::format(out, "", 1'795'917'951, "GET /\"a\\b\x01 HTTP/1.1", 429, 0);
    CHECK(out == "- - - [29/Nov/2026:02:05:51 +0000] \"GET /\\x22a\\x5cb\\x01 HTTP/1.1\" 429 -\n");
}

TEST_CASE("the access log writes every line, in order per thread, and counts them") {
    TempFile file;
    const char* path = file.path;
    {
        AccessLog log(path);
        for (int i = 0; i < 1000; ++i) log.record("::1", "GET /" + std::to_string(i) + " HTTP/1.1", 200, 3);
    }  // flushed by the destructor
    const std::vector<std::string> lines = lines_of(read_all(path));
    REQUIRE(lines.size() == 1000);
    CHECK(lines.front().find("\"GET /0 HTTP/1.1\" 200 3") != std::string::npos);
    CHECK(lines.back().find("\"GET /999 HTTP/1.1\" 200 3") != std::string::npos);
}

TEST_CASE("an access log on a full disk drops lines and counts them; answers never wait") {
    AccessLog log("/dev/full");  // every write fails with ENOSPC
    for (int i = 0; i < 10; ++i) log.record("127.0.0.1", "GET / HTTP/1.1", 200, 3);
    // The writer wakes every 100 ms; 20 s only turns a hang into a failure on a slow machine.
    for (int i = 0; i < 2'000 && log.dropped() < 10; ++i) usleep(10'000);
    CHECK(log.dropped() == 10);
    CHECK(log.written() == 0);
}

TEST_CASE("an access log that cannot be opened counts every line dropped") {
    AccessLog log("/nonexistent-dir/okserve.log");
    log.record("127.0.0.1", "GET / HTTP/1.1", 200, 3);
    CHECK(log.dropped() == 1);
}

TEST_CASE("prometheus text: HELP and TYPE for each name, cumulative buckets that end in the count") {
    admin::Reading r;
    Tally t;
    t.add(Tally::accepted, 5);
    t.add(Tally::answered, 4);
    t.add(Tally::requests, 7);
    t.add(Tally::rate_limited, 2);
    t.latency.record(20'000, 4);     // 20 µs
    t.latency.record(3'000'000, 3);  // 3 ms
    r.figures.add(t);
    r.gauges = Gauges{3, 66, 2, 1};
    const std::string text = admin::prometheus(r, admin::Extras{});
    for (const char* name : {"connections_accepted_total", "connections_active", "requests_total", "rejected_total",
                             "rate_limited_total", "timed_out_total", "closed_by_client_total", "errors_total",
                             "queue_depth", "queue_capacity", "workers", "workers_busy", "accept_errors_total",
                             "request_duration_seconds"}) {
        CAPTURE(name);
        CHECK(text.find(std::string("# HELP okserve_") + name + " ") != std::string::npos);
        CHECK(text.find(std::string("# TYPE okserve_") + name + " ") != std::string::npos);
    }
    CHECK(text.find("\nokserve_connections_active 1\n") != std::string::npos);  // 5 accepted, 4 ended
    CHECK(text.find("\nokserve_requests_total 7\n") != std::string::npos);
    CHECK(text.find("\nokserve_rate_limited_total 2\n") != std::string::npos);
    CHECK(text.find("\nokserve_queue_depth 3\n") != std::string::npos);
    CHECK(text.find("\nokserve_workers_busy 1\n") != std::string::npos);
    CHECK(text.find("okserve_request_duration_seconds_bucket{le=\"1e-05\"} 0\n") != std::string::npos);
    CHECK(text.find("okserve_request_duration_seconds_bucket{le=\"2.5e-05\"} 4\n") != std::string::npos);
    CHECK(text.find("okserve_request_duration_seconds_bucket{le=\"0.0025\"} 4\n") != std::string::npos);
    CHECK(text.find("okserve_request_duration_seconds_bucket{le=\"0.005\"} 7\n") != std::string::npos);
    CHECK(text.find("okserve_request_duration_seconds_bucket{le=\"10\"} 7\n") != std::string::npos);
    CHECK(text.find("okserve_request_duration_seconds_bucket{le=\"+Inf\"} 7\n") != std::string::npos);
    CHECK(text.find("okserve_request_duration_seconds_count 7\n") != std::string::npos);
    CHECK(text.find("okserve_request_duration_seconds_sum 0.009080000\n") != std::string::npos);
    CHECK(text.find("TYPE okserve_request_duration_seconds histogram") != std::string::npos);
}

TEST_CASE("the JSON snapshot: rates and percentiles over the interval, the load verbatim") {
    Config cfg;
    admin::Reading a, b;
    a.at_ns = 1'000'000'000;
    b.at_ns = 3'000'000'000;  // two seconds later
    Tally t;
    t.add(Tally::requests, 100);
    t.latency.record(40'000, 100);
    b.figures.add(t);
    b.gauges = Gauges{0, 0, 2, 1};
    const admin::Interval last = admin::between(a, b);
    CHECK(last.seconds == doctest::Approx(2.0));
    CHECK(last.rate(Tally::requests) == doctest::Approx(50.0));
    const std::string j = admin::snapshot_json(cfg, b, last, admin::Extras{}, "{\"state\":\"idle\"}");
    CHECK(j.front() == '{');
    CHECK(j.back() == '}');
    CHECK(j.find("\"mode\":\"pool\"") != std::string::npos);
    CHECK(j.find("\"requests\":50.00") != std::string::npos);
    CHECK(j.find("\"workers_busy\":1") != std::string::npos);
    CHECK(j.find("\"p99.9\":") != std::string::npos);
    CHECK(j.find("\"load\":{\"state\":\"idle\"}}") != std::string::npos);
    CHECK(admin::json_escape("a\"b\\c\n") == "a\\\"b\\\\c\\u000a");
}

TEST_CASE("load tester parameters: bounded, and either a count or a duration") {
    admin::LoadParams p;
    CHECK(admin::parse_load_params("duration=2s&connections=4&rate=100&keepalive=0", p).empty());
    CHECK(p.duration_ms == 2000);
    CHECK(p.connections == 4);
    CHECK(p.rate == 100);
    CHECK_FALSE(p.keepalive);
    CHECK(admin::parse_load_params("requests=3&connections=10", p).empty());
    CHECK(p.requests == 3);
    CHECK(p.connections == 3);  // no more connections than requests
    for (const char* bad : {"duration=2m", "duration=0s", "connections=0", "connections=1001", "rate=-1", "rate=-0", "keepalive=yes",
                            "requests=2&duration=1s", "threads=2", "requests=x"}) {
        CAPTURE(bad);
        CHECK_FALSE(admin::parse_load_params(bad, p).empty());
    }
}

TEST_CASE("latency: from a request's first byte to its answer's last byte, pipelined answers each counted") {
    Config cfg = test_config();
    cfg.admin = true;  // latencies are measured when someone can read them
    Conn c(cfg);
    using Kind = Connection::Event::Kind;
    // The head arrives in two pieces, 1 ms apart; the answer leaves 2 ms after the first.
    c->on({.kind = Kind::input, .now_ms = 0, .bytes = "GET / HTTP/1.1\r\nHo", .now_ns = 10'000'000});
    c->on({.kind = Kind::input, .now_ms = 0, .bytes = "st: a\r\n\r\n", .now_ns = 11'000'000});
    const std::size_t n = c.unsent().size();
    c->on({.kind = Kind::sent, .now_ms = 0, .count = n - 1, .now_ns = 11'500'000});
    CHECK(c->finished().answers == 0);  // not all of it yet
    c->on({.kind = Kind::sent, .now_ms = 0, .count = 1, .now_ns = 12'000'000});
    CHECK(c->finished().answers == 1);
    CHECK(c->finished().total_ns == 2'000'000);
    // Three pipelined in one read, written together 500 µs later.
    c->on({.kind = Kind::input, .now_ms = 0,
           .bytes = "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
           .now_ns = 20'000'000});
    c->on({.kind = Kind::sent, .now_ms = 0, .count = c.unsent().size(), .now_ns = 20'500'000});
    CHECK(c->finished().answers == 3);
    CHECK(c->finished().total_ns == 1'500'000);
    c.tell(Kind::timeout, 0);  // any other event clears it
    CHECK(c->finished().answers == 0);
    const Connection::Counts counts = c->take_counts();
    CHECK(counts.answers == 4);
    CHECK(counts.limited == 0);
    CHECK(c->take_counts().answers == 0);  // taken once
}

TEST_CASE("latency: not measured when nothing reads it") {
    Conn c;  // no --admin, no --rate-limit
    CHECK_FALSE(c.rules.fine_time);
    using Kind = Connection::Event::Kind;
    c->on({.kind = Kind::input, .now_ms = 0, .bytes = "GET / HTTP/1.1\r\nHost: a\r\n\r\n", .now_ns = 10'000'000});
    c->on({.kind = Kind::sent, .now_ms = 0, .count = c.unsent().size(), .now_ns = 12'000'000});
    CHECK(c->finished().answers == 0);
    CHECK(c->answers() == 1);
}

TEST_CASE("rate limit: 429 with Retry-After keeps the connection; served() leaves them out") {
    Config cfg = test_config();
    cfg.rate_limit = 1;
    cfg.rate_burst = 2;
    Conn c(cfg);
    using Kind = Connection::Event::Kind;
    const std::string three = "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nHEAD / HTTP/1.1\r\nHost: a\r\n\r\n";
    CHECK(c->on({.kind = Kind::input, .now_ms = 0, .bytes = three, .now_ns = 5'000'000'000}) == Connection::Action::write);
    const std::string out = c.flush(0);
    CHECK(count_of(out, "HTTP/1.1 200 OK\r\n") == 2);
    CHECK(count_of(out, "HTTP/1.1 429 Too Many Requests\r\n") == 1);
    CHECK(count_of(out, "Retry-After: 1\r\n") == 1);
    CHECK(out.find("Connection: close") == std::string::npos);
    CHECK(count_of(out, "Content-Length: 18\r\n") == 1);
    CHECK(out.ends_with("Retry-After: 1\r\n\r\n"));  // HEAD: the length, no body
    CHECK(c.next == Connection::Action::read);  // still open
    CHECK(c->answers() == 3);
    CHECK(c->limited() == 1);
    CHECK(c->served() == 2);
    // A second later one token is back.
    c->on({.kind = Kind::input, .now_ms = 1000, .bytes = "GET / HTTP/1.1\r\nHost: a\r\n\r\n", .now_ns = 6'000'000'000});
    CHECK(c.flush(1000).starts_with("HTTP/1.1 200 OK\r\n"));
    const Connection::Counts counts = c->take_counts();
    CHECK(counts.answers == 4);
    CHECK(counts.limited == 1);
}

TEST_CASE("the access log gets each request's line, status and body size, with the peer") {
    TempFile file;
    const char* path = file.path;
    {
        AccessLog log(path);
        Config cfg = test_config();
        Rig rig(cfg);
        rig.rules.access_log = &log;
        Connection& conn = rig.conn;
        conn.open(0);
        conn.set_peer("192.0.2.7");
        using Kind = Connection::Event::Kind;
        conn.on({Kind::input, 0, "\r\nGET /a?b=1 HTTP/1.1\r\nHost: a\r\n\r\nHEAD /h HTTP/1.0\r\n\r\n"});
        Conn bad;
        bad.rules.access_log = &log;
        bad->set_peer("::1");
        bad.in("BREW /pot HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", 0);
    }
    const std::vector<std::string> lines = lines_of(read_all(path));
    REQUIRE(lines.size() == 3);
    CHECK(lines[0].starts_with("192.0.2.7 - - ["));
    CHECK(lines[0].ends_with("] \"GET /a?b=1 HTTP/1.1\" 200 3"));
    CHECK(lines[1].ends_with("] \"HEAD /h HTTP/1.0\" 200 -"));
    CHECK(lines[2].starts_with("::1 - - ["));
    CHECK(lines[2].ends_with("] \"BREW /pot HTTP/1.1\" 400 12"));
}

}  // TEST_SUITE
