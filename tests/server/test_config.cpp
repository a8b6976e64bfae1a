// Command-line and environment parsing: every flag, its errors, and the precedence rules.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "server/config.hpp"
#include "server/sys/error.hpp"

using okserve::CommandLine;
using okserve::parse_command_line;
using okserve::UsageError;

namespace {

CommandLine parse(std::vector<std::string> args) {
    std::vector<const char*> argv{"okserve"};
    for (const std::string& a : args) argv.push_back(a.c_str());
    return parse_command_line(static_cast<int>(argv.size()), argv.data());
}

struct EnvVar {
    std::string name;
    EnvVar(std::string n, const char* value) : name(std::move(n)) { ::setenv(name.c_str(), value, 1); }
    ~EnvVar() { ::unsetenv(name.c_str()); }
};

}  // namespace

TEST_SUITE("config") {

TEST_CASE("defaults") {
    const CommandLine cl = parse({});
    CHECK(cl.action == okserve::Command::run);
    CHECK(cl.config.host == "127.0.0.1");
    CHECK(cl.config.port == 8080);
    CHECK(cl.config.workers == 0);
    CHECK(cl.config.queue == 64);
    CHECK(cl.config.overflow == okserve::Overflow::block);
    CHECK(cl.config.batch_dispatcher);
    CHECK_FALSE(parse({"--dispatcher-sched", "normal"}).config.batch_dispatcher);
    CHECK(cl.config.response.status == 200);
    CHECK(cl.config.response.body == "OK\n");
    CHECK(cl.config.header_timeout.count() == 10'000);
    CHECK(cl.config.drain_timeout.count() == 10'000);
}

TEST_CASE("long, short and inline values") {
    const CommandLine cl = parse({"--port", "0", "-w", "3", "-q16", "--overflow=reject", "--close",
                                  "-H", "X-A: 1", "--header=X-B:  two words ", "-s", "204",
                                  "--max-requests", "5", "--host", "::1"});
    CHECK(cl.config.port == 0);
    CHECK(cl.config.workers == 3);
    CHECK(cl.config.queue == 16);
    CHECK(cl.config.overflow == okserve::Overflow::reject);
    CHECK(cl.config.close);
    REQUIRE(cl.config.response.headers.size() == 2);
    CHECK(cl.config.response.headers[0] == std::pair<std::string, std::string>{"X-A", "1"});
    CHECK(cl.config.response.headers[1] == std::pair<std::string, std::string>{"X-B", "two words"});
    CHECK(cl.config.response.status == 204);
    CHECK(cl.config.max_requests == 5);
    CHECK(cl.config.host == "::1");
}

TEST_CASE("help and version stop parsing") {
    CHECK(parse({"--help"}).action == okserve::Command::help);
    CHECK(parse({"-h"}).action == okserve::Command::help);
    CHECK(parse({"-V"}).action == okserve::Command::version);
    CHECK(okserve::help_text().find("--overflow") != std::string::npos);
}

TEST_CASE("bad flags and values are usage errors") {
    const std::vector<std::vector<std::string>> bad = {
        {"--nope"}, {"-x"}, {"--port", "x"}, {"--port", "65536"}, {"--port"}, {"--workers", "0"},
        {"--overflow", "maybe"}, {"--mode", "threads"}, {"--status", "99"}, {"--close=1"},
        {"--header", "NoColon"}, {"--header", ": empty name"}, {"--header-timeout", "soon"},
        {"--keepalive-timeout", "0"}, {"--drain-timeout", "-1s"}, {"--body-file", "/nonexistent/x"},
        {"--workers", "2", "--min-workers", "3"}, {"--backlog", "0"}, {"--max-head", "10"}, {"--dispatcher-sched", "fifo"},
    };
    for (const auto& args : bad) {
        CAPTURE(args.front());
        CHECK_THROWS_AS(parse(args), UsageError);
    }
}

TEST_CASE("--drain-delay takes 0, its default; the timeouts do not") {
    CHECK(parse({"--drain-delay", "0"}).config.drain_delay.count() == 0);
    CHECK(parse({"--drain-delay", "2s"}).config.drain_delay.count() == 2000);
    CHECK_THROWS_AS(parse({"--drain-timeout", "0"}), UsageError);
    CHECK_THROWS_AS(parse({"--admin-interval", "0"}), UsageError);
}

TEST_CASE("a usage error is one line naming the flag") {
    try {
        parse({"--port", "x"});
        FAIL("no error");
    } catch (const UsageError& e) {
        const std::string what = e.what();
        CHECK(what.find("--port") != std::string::npos);
        CHECK(what.find('\n') == std::string::npos);
    }
}

TEST_CASE("durations") {
    using okserve::parse_duration;
    CHECK(parse_duration("f", "250ms").count() == 250);
    CHECK(parse_duration("f", "2s").count() == 2000);
    CHECK(parse_duration("f", "1.5").count() == 1500);
    CHECK(parse_duration("f", "1m").count() == 60'000);
    CHECK_THROWS_AS(parse_duration("f", "2h"), UsageError);
    CHECK_THROWS_AS(parse_duration("f", ""), UsageError);
    CHECK_THROWS_AS(parse_duration("f", "ms"), UsageError);
}

TEST_CASE("environment, PORT, and flags win") {
    EnvVar port("PORT", "9000");
    {
        CHECK(parse({}).config.port == 9000);
    }
    EnvVar ok_port("OKSERVE_PORT", "9001");
    EnvVar workers("OKSERVE_WORKERS", "5");
    EnvVar close("OKSERVE_CLOSE", "1");
    const CommandLine from_env = parse({});
    CHECK(from_env.config.port == 9001);  // OKSERVE_PORT is more specific than PORT
    CHECK(from_env.config.workers == 5);
    CHECK(from_env.config.close);
    CHECK(parse({"--port", "9002"}).config.port == 9002);
    EnvVar bad_env("OKSERVE_QUEUE", "lots");
    CHECK_THROWS_AS(parse({}), UsageError);
}

}  // TEST_SUITE
