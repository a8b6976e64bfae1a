// okserve::loadgen run: owns one load run from resolved address to merged Totals: threads,
// the request budget, the progress display. Knows nothing of the command line's syntax.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

#include "tools/loadgen/options.hpp"
#include "tools/loadgen/stats.hpp"

namespace okserve::loadgen {

struct RunResult {
    Totals totals;
    double seconds = 0;  // from the first connect to the end of the last worker
};

// Where progress goes: a live line rewritten with '\r' (a terminal), plain lines at most once
// a second (--progress when not a terminal), or nothing.
enum class ProgressStyle : std::uint8_t { none, live, lines };

// Start-up failures (the host does not resolve, epoll_create1) throw std::runtime_error holding
// one line; after that, every failure is a counted error. `stop` ends the run early (SIGINT).
RunResult run_load(const Options& options, std::string_view request, const std::atomic<bool>& stop,
                   ProgressStyle progress);

// The body for --body-file; throws std::runtime_error("open PATH: reason").
std::string read_body_file(const std::string& path);

}  // namespace okserve::loadgen
