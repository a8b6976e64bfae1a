// loadgen: an HTTP/1.1 load generator with wrk's command line, exact request counts, an open
// loop (-R) without coordinated omission, and a check of every response it reads.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <exception>
#include <string_view>
#include <unistd.h>
#include <vector>

#include "tools/loadgen/options.hpp"
#include "tools/loadgen/report.hpp"
#include "tools/loadgen/run.hpp"

namespace {

std::atomic<bool> stop_requested{false};

void on_signal(int) { stop_requested.store(true, std::memory_order_relaxed); }

void install_stop_handler() {
    struct sigaction sa{};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
    using namespace okserve::loadgen;
    const std::vector<std::string_view> args(argv + 1, argv + argc);
    const ParsedArgs parsed = parse_args(args);
    if (!parsed.error.empty()) {
        std::fprintf(stderr, "loadgen: %s\n", parsed.error.c_str());
        return 2;
    }
    const Options& options = parsed.options;
    if (options.help || options.version) {
        std::fputs(options.help ? usage().c_str() : "loadgen (okserve) 0.1\n", stdout);
        return 0;
    }
    try {
        const std::string body = options.body_file.empty() ? std::string() : read_body_file(options.body_file);
        const std::string request = build_request(options, body);
        install_stop_handler();
        const ProgressStyle progress = isatty(STDERR_FILENO) ? ProgressStyle::live
                                       : options.progress    ? ProgressStyle::lines
                                                             : ProgressStyle::none;
        const RunResult result = run_load(options, request, stop_requested, progress);
        const std::string text = options.json ? format_json(options, result) : format_summary(options, result);
        std::fputs(text.c_str(), stdout);
        return result.totals.error_total() > 0 ? 1 : 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "loadgen: %s\n", e.what());
        return 1;
    }
}
