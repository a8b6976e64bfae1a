#include "tools/loadgen/run.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <netdb.h>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "tools/loadgen/report.hpp"
#include "tools/loadgen/worker.hpp"

namespace okserve::loadgen {

namespace {

void resolve(const Url& url, WorkerConfig& config) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(url.port);
    const int rc = getaddrinfo(url.host.c_str(), port.c_str(), &hints, &found);
    if (rc != 0 || found == nullptr) {
        throw std::runtime_error("resolve " + url.host + ": " + gai_strerror(rc));
    }
    std::memcpy(&config.address, found->ai_addr, found->ai_addrlen);
    config.address_len = found->ai_addrlen;
    freeaddrinfo(found);
}

// Waits for the workers, drawing the progress display meanwhile.
class ProgressWatch {
public:
    ProgressWatch(const std::vector<std::unique_ptr<Worker>>& workers, ProgressStyle style, std::int64_t start)
        : workers_(workers), style_(style), start_(start) {}

    void worker_finished() {
        std::lock_guard lock(mutex_);
        ++finished_;
        cv_.notify_one();
    }

    void wait_all() {
        std::unique_lock lock(mutex_);
        std::uint64_t last = 0;
        for (int tick = 1; finished_ < workers_.size(); ++tick) {
            cv_.wait_for(lock, std::chrono::milliseconds(250), [&] { return finished_ == workers_.size(); });
            if (finished_ < workers_.size() && (style_ == ProgressStyle::live || tick % 4 == 0)) {
                last = draw(last, tick);
            }
        }
        if (style_ == ProgressStyle::live && last_drawn_) {
            std::fputs("\r\033[K", stderr);
        }
    }

private:
    std::uint64_t draw(std::uint64_t last, int tick) {
        std::uint64_t responses = 0;
        std::uint64_t errors = 0;
        for (const auto& w : workers_) {
            responses += w->progress_responses();
            errors += w->progress_errors();
        }
        const double elapsed = static_cast<double>(now_ns() - start_) / 1e9;
        const double per_second = static_cast<double>(responses - last) * (style_ == ProgressStyle::live ? 4.0 : 1.0);
        const std::string line = format_progress(responses, per_second, errors, elapsed);
        if (style_ == ProgressStyle::none) {
            return responses;
        }
        std::fprintf(stderr, style_ == ProgressStyle::live ? "\r%s\033[K" : "%s\n", line.c_str());
        std::fflush(stderr);
        last_drawn_ = tick;
        return responses;
    }

    const std::vector<std::unique_ptr<Worker>>& workers_;
    ProgressStyle style_;
    std::int64_t start_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::size_t finished_ = 0;
    int last_drawn_ = 0;
};

std::vector<WorkerConfig> plan(const Options& o, std::string_view request, const std::atomic<bool>& stop,
                               RequestBudget* budget, std::int64_t start) {
    WorkerConfig base;
    resolve(o.url, base);
    base.request = request;
    base.pipeline = o.pipeline;
    base.close = o.close;
    base.head = o.method == "HEAD";
    base.timeout_ns = o.timeout_ns;
    base.start_ns = start;
    base.deadline_ns = (o.requests > 0 && !o.duration_set) ? INT64_MAX : start + o.duration_ns;
    base.budget = budget;
    base.stop = &stop;
    std::vector<WorkerConfig> configs;
    for (int i = 0; i < o.threads; ++i) {
        WorkerConfig c = base;
        c.connections = o.connections / o.threads + (i < o.connections % o.threads ? 1 : 0);
        if (o.rate > 0) {
            c.rate = o.rate * c.connections / o.connections;
            // Stagger the threads' schedules so their sends interleave instead of bunching.
            c.start_ns = start + static_cast<std::int64_t>(1e9 / c.rate * i / o.threads);
        }
        configs.push_back(c);
    }
    return configs;
}

}  // namespace

RunResult run_load(const Options& options, std::string_view request, const std::atomic<bool>& stop,
                   ProgressStyle progress) {
    const std::int64_t start = now_ns();
    std::unique_ptr<RequestBudget> budget;
    if (options.requests > 0) {
        budget = std::make_unique<RequestBudget>(options.requests);
    }
    std::vector<std::unique_ptr<Worker>> workers;
    for (const WorkerConfig& config : plan(options, request, stop, budget.get(), start)) {
        workers.push_back(std::make_unique<Worker>(config));
    }
    ProgressWatch watch(workers, progress, start);
    std::vector<std::thread> threads;
    for (auto& w : workers) {
        threads.emplace_back([&watch, worker = w.get()] {
            worker->run();
            watch.worker_finished();
        });
    }
    watch.wait_all();
    RunResult result;
    std::int64_t end = start;
    for (std::size_t i = 0; i < threads.size(); ++i) {
        threads[i].join();
        result.totals.merge(workers[i]->totals());
        end = std::max(end, workers[i]->finished_ns());
    }
    result.seconds = static_cast<double>(end - start) / 1e9;
    return result;
}

std::string read_body_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error("open " + path + ": " + std::strerror(errno));
    }
    std::ostringstream body;
    body << in.rdbuf();
    return body.str();
}

}  // namespace okserve::loadgen
