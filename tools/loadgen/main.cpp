// loadgen: an HTTP/1.1 load generator with wrk's command line, exact request counts, an open
// loop (-R) without coordinated omission, and a check of every response it reads.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <exception>
#include <span>
#include <string_view>
#include <unistd.h>
#include <vector>

#include "server/config.hpp"
#include "tools/loadgen/merge.hpp"
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

int run_main(const okserve::loadgen::Options& options) {
    using namespace okserve::loadgen;
    const BodyFile body = options.body_file.empty() ? BodyFile() : BodyFile(options.body_file);
    const std::string head = build_head(options, body.bytes().size());
    if (const std::string warning = check_descriptor_limit(options.connections); !warning.empty()) {
        std::fprintf(stderr, "loadgen: warning: %s\n", warning.c_str());
    }
    install_stop_handler();
    if (options.start_at) {
        if (const std::string warning = wait_for_start(*options.start_at, stop_requested); !warning.empty()) {
            std::fprintf(stderr, "loadgen: warning: %s\n", warning.c_str());
        }
    }
    if (!options.json && !options.json_lines) {
        std::fputs(format_banner(options).c_str(), stdout);
        std::fflush(stdout);
    }
    const ProgressStyle progress = isatty(STDERR_FILENO) ? ProgressStyle::live
                                   : options.progress    ? ProgressStyle::lines
                                                         : ProgressStyle::none;
    ProgressSink sink;
    if (options.json_lines) {
        sink = [](const ProgressSample& sample) {
            std::fputs(format_json_progress(sample).c_str(), stdout);
            std::fflush(stdout);
        };
    }
    const RunResult result = run_load(options, head, body.bytes(), stop_requested, progress, sink);
    const std::string text = options.json_lines ? format_json_result(options, result)
                             : options.json     ? format_json(options, result)
                                                : format_summary(options, result);
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
    if (const std::string warning = rate_warning(options, result); !warning.empty()) {
        std::fprintf(stderr, "loadgen: warning: %s\n", warning.c_str());
    }
    if (options.strict && rate_fell_short(options, result)) {
        return 3;
    }
    return result.totals.error_total() > 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace okserve::loadgen;
    const std::vector<std::string_view> args(argv + 1, argv + argc);
    if (!args.empty() && args[0] == "report") {
        return report_main(std::span<const std::string_view>(args).subspan(1));
    }
    const ParsedArgs parsed = parse_args(args);
    if (!parsed.error.empty()) {
        std::fprintf(stderr, "loadgen: %s\n", parsed.error.c_str());
        return 2;
    }
    const Options& options = parsed.options;
    if (options.help || options.version) {
        // The same version line as okserve's: they are built and installed together.
        if (options.help) {
            std::fputs(usage().c_str(), stdout);
        } else {
            std::printf("%s\n", okserve::version_text);
        }
        return 0;
    }
    try {
        return run_main(options);
    } catch (const InputError& e) {
        std::fprintf(stderr, "loadgen: %s\n", escape_controls(e.what()).c_str());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "loadgen: %s\n", escape_controls(e.what()).c_str());
        return 1;
    }
}
