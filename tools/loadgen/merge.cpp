#include "tools/loadgen/merge.hpp"

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "tools/loadgen/hlog.hpp"
#include "tools/loadgen/report.hpp"

namespace okserve::loadgen {

namespace {

// The runs side by side: counts add up, the span runs from the earliest start to the latest end,
// and the latency comes from the merged histogram (median of each microsecond slot).
struct Merged {
    Options options;
    RunResult result;
    std::size_t logs = 0;
};

Merged merge_logs(const std::vector<LogFile>& logs) {
    Merged m;
    m.logs = logs.size();
    m.options = logs.front().options;
    m.options.threads = 0;
    m.options.connections = 0;
    m.options.rate = 0;
    double first_start = logs.front().result.start_epoch;
    double last_end = first_start;
    HdrHistogram latency = make_log_histogram();
    for (const LogFile& log : logs) {
        m.options.threads += log.options.threads;
        m.options.connections += log.options.connections;
        m.options.rate += log.options.rate;
        first_start = std::min(first_start, log.result.start_epoch);
        last_end = std::max(last_end, log.result.start_epoch + log.result.seconds);
        m.result.totals.merge(log.result.totals);
        latency.add(log.merged);
    }
    m.result.start_epoch = first_start;
    m.result.seconds = last_end - first_start;
    const auto& counts = latency.counts();
    for (std::size_t i = 0; i < counts.size(); ++i) {
        if (counts[i] == 0) continue;
        m.result.totals.latency.record(static_cast<std::uint64_t>(latency.median_equivalent(i)) * 1000, counts[i]);
    }
    return m;
}

}  // namespace

int report_main(std::span<const std::string_view> args) {
    bool json = false;
    bool latency = false;
    std::vector<std::string> paths;
    for (const std::string_view arg : args) {
        if (arg == "--json") {
            json = true;
        } else if (arg == "--latency") {
            latency = true;
        } else if (arg == "-h" || arg == "--help") {
            std::fputs("Usage: loadgen report [--json] [--latency] FILE...\n"
                       "  Merges the --hlog files of several loadgen runs into one report.\n", stdout);
            return 0;
        } else if (arg.starts_with("-") && arg != "-") {
            std::fprintf(stderr, "loadgen: report: unknown flag '%s' (see loadgen report --help)\n",
                         escape_controls(arg).c_str());
            return 2;
        } else {
            paths.emplace_back(arg);
        }
    }
    if (paths.empty()) {
        std::fputs("loadgen: report: no log files given (loadgen report [--json] FILE...)\n", stderr);
        return 2;
    }
    std::vector<LogFile> logs;
    try {
        for (const std::string& path : paths) logs.push_back(read_log(path));
    } catch (const InputError& e) {
        // Nothing is printed on stdout: a report of the other files would pass for the whole.
        std::fprintf(stderr, "loadgen: report: %s\n", escape_controls(e.what()).c_str());
        return 2;
    }
    Merged m = merge_logs(logs);
    m.options.latency = latency;
    if (json) {
        std::printf("{\"logs\":%zu,%s}\n", m.logs, format_json_fields(m.options, m.result).c_str());
    } else {
        std::printf("Merged %zu log%s @ http://%s%s\n", m.logs, m.logs == 1 ? "" : "s", m.options.url.authority.c_str(),
                    m.options.url.path.c_str());
        std::printf("  %d threads and %d connections in all%s\n", m.options.threads, m.options.connections,
                    m.options.rate > 0 ? ", open loop" : ", closed loop");
        std::fputs(format_summary(m.options, m.result).c_str(), stdout);
    }
    return m.result.totals.error_total() > 0 ? 1 : 0;
}

}  // namespace okserve::loadgen
