// okserve::loadgen run: owns one load run from resolved address to merged Totals: threads,
// the request budget, the progress display. Knows nothing of the command line's syntax.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "tools/loadgen/options.hpp"
#include "tools/loadgen/stats.hpp"

namespace okserve::loadgen {

struct RunResult {
    Totals totals;
    double seconds = 0;  // from the first connect to the end of the last worker
    double start_epoch = 0;  // wall-clock time of the start, seconds since the epoch
};

// Bad input found after the command line parsed (a body file that is not a regular file, a
// log that is not a log): main prints what() as one line and exits 2.
struct InputError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// --body-file, mapped read-only once: every connection of every worker sends from the same
// pages, so a 2 GiB body costs 2 GiB of page cache and no copies.
class BodyFile {
public:
    BodyFile() = default;
    explicit BodyFile(const std::string& path);  // throws InputError naming the path and why
    ~BodyFile();
    BodyFile(const BodyFile&) = delete;
    BodyFile& operator=(const BodyFile&) = delete;
    std::string_view bytes() const noexcept { return {static_cast<const char*>(map_), size_}; }

private:
    void* map_ = nullptr;
    std::size_t size_ = 0;
};

// Called about once a second while the run goes on, from the main thread.
struct ProgressSample {
    double elapsed_s = 0;
    std::uint64_t requests = 0;  // responses so far
    std::uint64_t errors = 0;
    double rps = 0;              // over the last sample
};
using ProgressSink = std::function<void(const ProgressSample&)>;

// Where progress goes: a live line rewritten with '\r' (a terminal), plain lines at most once
// a second (--progress when not a terminal), or nothing.
enum class ProgressStyle : std::uint8_t { none, live, lines };

// Start-up failures (the host does not resolve, epoll_create1) throw std::runtime_error holding
// one line; after that, every failure is a counted error. `stop` ends the run early (SIGINT).
// `head` is the request without its body. `sink`, when set, gets a sample each second.
RunResult run_load(const Options& options, std::string_view head, std::string_view body,
                   const std::atomic<bool>& stop, ProgressStyle progress, const ProgressSink& sink = {});

// Raises RLIMIT_NOFILE's soft limit to what `connections` need if the hard limit allows;
// returns a warning line when it can't (empty when all is well).
std::string check_descriptor_limit(int connections);

// --start-at: sleeps until the wall clock reaches `epoch_seconds` (or `stop`); returns a warning
// line when that time has already passed (and then does not wait).
std::string wait_for_start(double epoch_seconds, const std::atomic<bool>& stop);

}  // namespace okserve::loadgen
