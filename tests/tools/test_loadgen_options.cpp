// loadgen command line: durations, URLs, flags, the bad-flag path and the request bytes.
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "tools/loadgen/options.hpp"

using namespace okserve::loadgen;

namespace {

ParsedArgs parse(std::vector<std::string_view> args) { return parse_args(args); }

}  // namespace

TEST_SUITE("loadgen") {

TEST_CASE("durations take wrk's units; anything else is refused") {
    const struct { std::string_view text; std::int64_t ns; } good[] = {
        {"10s", 10'000'000'000}, {"500ms", 500'000'000}, {"1m", 60'000'000'000}, {"2", 2'000'000'000},
        {"1.5s", 1'500'000'000}, {"250us", 250'000}, {"1h", 3'600'000'000'000},
    };
    for (const auto& c : good) {
        CAPTURE(c.text);
        REQUIRE(parse_duration_ns(c.text).has_value());
        CHECK(*parse_duration_ns(c.text) == c.ns);
    }
    for (std::string_view bad : {"", "s", "0", "0s", "-1s", "10x", "ten", "1.2.3s", "5 s", "1e9h"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_duration_ns(bad).has_value());
    }
}

TEST_CASE("URLs: IPv4, bracketed IPv6, default port and path") {
    const struct { std::string_view text; std::string host; int port; std::string path; std::string authority; } good[] = {
        {"http://127.0.0.1:8080/path", "127.0.0.1", 8080, "/path", "127.0.0.1:8080"},
        {"http://[::1]:8080/", "::1", 8080, "/", "[::1]:8080"},
        {"http://localhost", "localhost", 80, "/", "localhost"},
        {"http://127.0.0.1:9/a/b?x=1", "127.0.0.1", 9, "/a/b?x=1", "127.0.0.1:9"},
        {"http://127.0.0.1:9?q", "127.0.0.1", 9, "/?q", "127.0.0.1:9"},
    };
    for (const auto& c : good) {
        CAPTURE(c.text);
        std::string error;
        const auto url = parse_url(c.text, &error);
        REQUIRE(url.has_value());
        CHECK(url->host == c.host);
        CHECK(url->port == c.port);
        CHECK(url->path == c.path);
        CHECK(url->authority == c.authority);
    }
    for (std::string_view bad : {"127.0.0.1:8080", "https://127.0.0.1/", "http://", "http://:80/", "http://[::1/",
                                 "http://h:0/", "http://h:65536/", "http://h:x/", "http://[::1]x/"}) {
        CAPTURE(bad);
        std::string error;
        CHECK_FALSE(parse_url(bad, &error).has_value());
        CHECK_FALSE(error.empty());
    }
}

TEST_CASE("flags: wrk's spellings, attached values and long forms") {
    const ParsedArgs p = parse({"-t4", "-c", "100", "--duration=500ms", "-H", "X-A: 1", "--header", "X-B: 2",
                                "--timeout", "3s", "--latency", "-n", "77", "-R", "1000", "--pipeline", "8", "-m",
                                "HEAD", "--json", "--progress", "http://[::1]:8080/x"});
    REQUIRE(p.error.empty());
    const Options& o = p.options;
    CHECK(o.threads == 4);
    CHECK(o.connections == 100);
    CHECK(o.duration_ns == 500'000'000);
    CHECK(o.duration_set);
    CHECK(o.headers == std::vector<std::string>{"X-A: 1", "X-B: 2"});
    CHECK(o.timeout_ns == 3'000'000'000);
    CHECK(o.latency);
    CHECK(o.requests == 77);
    CHECK(o.rate == doctest::Approx(1000));
    CHECK(o.pipeline == 8);
    CHECK(o.method == "HEAD");
    CHECK(o.json);
    CHECK(o.progress);
    CHECK(o.url.port == 8080);
}

TEST_CASE("defaults follow wrk") {
    const ParsedArgs p = parse({"http://127.0.0.1:1/"});
    REQUIRE(p.error.empty());
    CHECK(p.options.threads == 2);
    CHECK(p.options.connections == 10);
    CHECK(p.options.duration_ns == 10'000'000'000);
    CHECK_FALSE(p.options.duration_set);
    CHECK(p.options.requests == 0);
    CHECK(p.options.pipeline == 1);
    CHECK_FALSE(p.options.close);
}

TEST_CASE("bad command lines give one line of error") {
    const std::vector<std::vector<std::string_view>> bad = {
        {"--nope", "http://127.0.0.1:1/"}, {"-t", "0", "http://127.0.0.1:1/"}, {"-c", "x", "http://127.0.0.1:1/"},
        {"-d", "10x", "http://127.0.0.1:1/"}, {"-n", "0", "http://127.0.0.1:1/"}, {"-R", "-5", "http://127.0.0.1:1/"},
        {"--pipeline", "0", "http://127.0.0.1:1/"}, {"-H", "NoColon", "http://127.0.0.1:1/"},
        {"-m", "GE T", "http://127.0.0.1:1/"}, {"http://127.0.0.1:1/", "-t"}, {"-t2"},
        {"-t", "4", "-c", "2", "http://127.0.0.1:1/"}, {"--close", "--pipeline", "4", "http://127.0.0.1:1/"},
        {"http://127.0.0.1:1/", "http://127.0.0.1:2/"}, {"ftp://127.0.0.1/"},
    };
    for (const auto& args : bad) {
        CAPTURE(args.front());
        CAPTURE(args.size());
        const ParsedArgs p = parse(args);
        CHECK_FALSE(p.error.empty());
        CHECK(p.error.find('\n') == std::string::npos);
    }
    CHECK(parse({"--help"}).error.empty());
    CHECK(parse({"-V"}).options.version);
}

TEST_CASE("the request is built once, with Host, user headers, close and the body's length") {
    ParsedArgs p = parse({"-H", "X-Test: yes", "--close", "http://127.0.0.1:8080/p"});
    REQUIRE(p.error.empty());
    CHECK(build_request(p.options, "") ==
          "GET /p HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX-Test: yes\r\nConnection: close\r\n\r\n");
    p = parse({"-m", "POST", "-H", "host: example", "http://[::1]:81/"});
    REQUIRE(p.error.empty());
    CHECK(build_request(p.options, "{}") == "POST / HTTP/1.1\r\nhost: example\r\nContent-Length: 2\r\n\r\n{}");
}

}  // TEST_SUITE
