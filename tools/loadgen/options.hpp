// okserve::loadgen command line: owns the flags (wrk's, plus -n, -R, --pipeline, --close), the
// duration and URL syntax, and the request bytes built from them. Knows nothing of sockets.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace okserve::loadgen {

struct Url {
    std::string host;       // without brackets: "127.0.0.1", "::1", "localhost"
    std::uint16_t port = 80;
    std::string path = "/"; // with the query, if any
    std::string authority;  // for the Host header: "127.0.0.1:8080", "[::1]:8080"
};

struct Options {
    int threads = 2;
    int connections = 10;
    std::int64_t duration_ns = 10'000'000'000;
    bool duration_set = false;
    std::uint64_t requests = 0;       // -n: exact count; 0 means "run for the duration"
    double rate = 0;                  // -R: requests/second in total; 0 means closed loop
    int pipeline = 1;
    bool close = false;               // one request per connection
    std::string method = "GET";
    std::vector<std::string> headers; // "Name: value", as given
    std::string body_file;
    std::int64_t timeout_ns = 2'000'000'000;
    bool latency = false;             // print the percentile table
    bool json = false;
    bool progress = false;            // progress lines even when stderr is not a terminal
    bool json_lines = false;          // progress objects on stdout each second, then the result
    bool strict = false;              // -R: exit 3 when the achieved rate is below 95% of it
    std::string hlog;                 // --hlog: HdrHistogram interval log of latency in us
    std::int64_t hlog_interval_ns = 1'000'000'000;
    std::optional<double> start_at;   // --start-at: wall-clock start, seconds since the epoch
    bool help = false;
    bool version = false;
    Url url;
};

struct ParsedArgs {
    Options options;
    std::string error;  // one line; empty when the command line is good
};

// "10s", "500ms", "1m", "250us", "1h", "1.5s"; a bare number is seconds. Positive only.
std::optional<std::int64_t> parse_duration_ns(std::string_view text);
// "http://host[:port][/path]"; IPv6 literals in brackets. Fills *error when it returns nothing.
std::optional<Url> parse_url(std::string_view text, std::string* error);
// Everything after argv[0]. Never throws for bad input; fills .error instead.
ParsedArgs parse_args(std::span<const std::string_view> args);
std::string usage();

// The request bytes, sent as they are for every request. Host comes from the URL unless a -H
// gives one; --close adds "Connection: close"; a body gets its Content-Length.
std::string build_request(const Options& options, std::string_view body);
// The same without the body, for a body of body_size bytes sent after it.
std::string build_head(const Options& options, std::size_t body_size);

}  // namespace okserve::loadgen
