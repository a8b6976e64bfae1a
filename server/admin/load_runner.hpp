// okserve admin load tester: the live page's "run a load" panel starts tools/loadgen as a
// child process against the main listener, follows its one-JSON-object-a-second progress
// (--json-lines) and keeps its result. One run at a time, bounded in time and size; a run
// can be stopped (SIGINT: loadgen stops and still reports). Used by the admin thread only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <sys/types.h>

#include "server/sys/fd.hpp"

namespace okserve::admin {

struct LoadParams {
    std::uint64_t requests = 0;        // 0: run for `duration_ms`
    std::int64_t duration_ms = 5'000;
    int connections = 10;
    double rate = 0;                   // requests/second; 0: as fast as possible
    bool keepalive = true;

    static constexpr std::int64_t max_duration_ms = 60'000;
    static constexpr std::uint64_t max_requests = 10'000'000;
    static constexpr int max_connections = 1'000;
};

// From a query string ("duration=5s&connections=10&rate=0&keepalive=1", or requests=N):
// an empty string when good, else a one-line reason.
std::string parse_load_params(std::string_view query, LoadParams& out);

class LoadRunner {
public:
    // loadgen: the program to run; target: the main listener's URL.
    LoadRunner(std::string loadgen, std::string target);
    ~LoadRunner();  // stops and reaps a running child
    LoadRunner(const LoadRunner&) = delete;
    LoadRunner& operator=(const LoadRunner&) = delete;

    // Starts a run: "" when started, else why not (one already runs, loadgen missing).
    std::string start(const LoadParams& p);
    // Asks a running child to stop (it reports what it did). False when none runs.
    bool stop();
    bool running() const noexcept { return pid_ > 0; }
    // The child's output pipe while it runs (-1 otherwise): the caller polls it.
    int output_fd() const noexcept { return out_.get(); }
    // Reads what the child wrote; at end of output, reaps it.
    void on_readable();
    // {"run":N, "state":"idle|running|done|stopped|failed", "params":{...}, "progress":{...},
    //  "result":{...}, "message":"..."}
    std::string status_json() const;

private:
    void take_line(std::string_view line);
    void reap();

    std::string loadgen_;
    std::string target_;
    pid_t pid_ = -1;
    Fd out_;
    std::string partial_;
    std::string state_ = "idle";
    std::string params_json_ = "null";
    std::string progress_json_ = "null";
    std::string result_json_ = "null";
    std::string message_;
    bool stop_asked_ = false;
    std::uint64_t run_ = 0;  // counts starts: tells one run's status from the previous one's
};

// The loadgen that sits beside this executable (the build and install trees both put it
// there), or "loadgen" to be found on PATH.
std::string find_loadgen();

}  // namespace okserve::admin
