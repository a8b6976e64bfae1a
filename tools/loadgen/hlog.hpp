// okserve::loadgen interval log: owns the HdrHistogram log text (format version 1.2): writing
// one compressed histogram line per interval during a run, and reading a log back, line by line
// checked. Knows the run only through the Options and RunResult it is handed at the end.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "tools/loadgen/hdr_histogram.hpp"
#include "tools/loadgen/options.hpp"
#include "tools/loadgen/run.hpp"

namespace okserve::loadgen {

// The layout of every histogram we log: 1 us to 1 hour, 3 significant digits (HdrHistogram's
// usual choice for latency in microseconds).
inline constexpr std::int64_t hlog_lowest_us = 1;
inline constexpr std::int64_t hlog_highest_us = 3'600'000'000;
inline constexpr int hlog_digits = 3;
HdrHistogram make_log_histogram();

// One run's log. Workers deliver() a finished interval's histogram and advance() past it; the
// main thread writes every interval all workers have passed. Thread-safe between those calls.
class IntervalLog {
public:
    // Opens (truncates) `path` and writes the header; throws std::runtime_error("open PATH: ...").
    IntervalLog(const std::string& path, double start_epoch, std::int64_t start_ns, std::int64_t interval_ns,
                int workers);
    ~IntervalLog();
    IntervalLog(const IntervalLog&) = delete;
    IntervalLog& operator=(const IntervalLog&) = delete;

    std::int64_t interval_of(std::int64_t now_ns) const noexcept { return (now_ns - start_ns_) / interval_ns_; }
    void deliver(std::int64_t interval, const HdrHistogram& h);
    void advance(int worker, std::int64_t interval);
    void write_ready();
    // The remaining intervals up to end_ns, then the loadgen summary line; throws on a write error.
    void finish(std::int64_t end_ns, const Options& options, const RunResult& result);

private:
    void write_interval(std::int64_t interval, const HdrHistogram& h, std::int64_t end_ns);

    std::FILE* file_ = nullptr;
    std::string path_;
    std::int64_t start_ns_;
    std::int64_t interval_ns_;
    std::mutex mutex_;
    std::map<std::int64_t, HdrHistogram> pending_;
    std::vector<std::int64_t> passed_;  // per worker: it will deliver nothing below this
    std::int64_t next_write_ = 0;
};

// A log read back. The loadgen summary line carries what the histograms cannot: errors, bytes,
// the run's duration and shape.
struct LogFile {
    std::string path;
    double start_epoch = 0;
    std::vector<HdrHistogram> intervals;
    HdrHistogram merged = make_log_histogram();
    Options options;      // url, threads, connections, pipeline, close, rate
    RunResult result;     // totals (without latency) and seconds
};

// Throws InputError("PATH:LINE: what is wrong") for a file that is not an HdrHistogram log, a
// corrupt interval, or a log without loadgen's summary line at its end (a truncated run).
LogFile read_log(const std::string& path);

}  // namespace okserve::loadgen
