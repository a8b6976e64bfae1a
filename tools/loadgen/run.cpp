#include "tools/loadgen/run.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <mutex>
#include <netdb.h>
#include <stdexcept>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "tools/loadgen/hlog.hpp"
#include "tools/loadgen/report.hpp"
#include "tools/loadgen/worker.hpp"

namespace okserve::loadgen {

namespace {

std::string errno_line(int error) {
    const char* desc = strerrordesc_np(error);
    const char* name = strerrorname_np(error);
    return std::string(desc ? desc : "unknown error") + " (" + (name ? name : "?") + ")";
}

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

// Waits for the workers, drawing the progress display and feeding the sink meanwhile.
class ProgressWatch {
public:
    ProgressWatch(const std::vector<std::unique_ptr<Worker>>& workers, ProgressStyle style, std::int64_t start,
                  const ProgressSink& sink, IntervalLog* hlog)
        : workers_(workers), style_(style), start_(start), sink_(sink), hlog_(hlog) {}

    void worker_finished() {
        std::lock_guard lock(mutex_);
        ++finished_;
        cv_.notify_one();
    }

    void wait_all() {
        constexpr std::int64_t second = 1'000'000'000;
        const std::int64_t draw_every = style_ == ProgressStyle::live ? second / 4 : second;
        std::int64_t next_draw = start_ + draw_every;
        std::int64_t next_sample = start_ + second;
        std::unique_lock lock(mutex_);
        while (finished_ < workers_.size()) {
            const std::int64_t wake = sink_ ? std::min(next_draw, next_sample) : next_draw;
            cv_.wait_for(lock, std::chrono::nanoseconds(std::max<std::int64_t>(0, wake - now_ns())),
                         [&] { return finished_ == workers_.size(); });
            if (finished_ == workers_.size()) break;
            const std::int64_t now = now_ns();
            if (now >= next_draw) {
                draw(now, draw_every);
                next_draw += draw_every * ((now - next_draw) / draw_every + 1);
            }
            if (sink_ && now >= next_sample) {
                sample(now);
                next_sample += second * ((now - next_sample) / second + 1);
            }
            if (hlog_) {
                lock.unlock();
                hlog_->write_ready();
                lock.lock();
            }
        }
        if (style_ == ProgressStyle::live && drawn_) {
            std::fputs("\r\033[K", stderr);
        }
    }

private:
    std::pair<std::uint64_t, std::uint64_t> count() const {
        std::uint64_t responses = 0;
        std::uint64_t errors = 0;
        for (const auto& w : workers_) {
            responses += w->progress_responses();
            errors += w->progress_errors();
        }
        return {responses, errors};
    }

    void draw(std::int64_t now, std::int64_t every) {
        const auto [responses, errors] = count();
        const double per_second = static_cast<double>(responses - drawn_responses_) * 1e9 / static_cast<double>(every);
        drawn_responses_ = responses;
        if (style_ == ProgressStyle::none) return;
        const double elapsed = static_cast<double>(now - start_) / 1e9;
        const std::string line = format_progress(responses, per_second, errors, elapsed);
        std::fprintf(stderr, style_ == ProgressStyle::live ? "\r%s\033[K" : "%s\n", line.c_str());
        std::fflush(stderr);
        drawn_ = true;
    }

    void sample(std::int64_t now) {
        const auto [responses, errors] = count();
        ProgressSample s;
        s.elapsed_s = static_cast<double>(now - start_) / 1e9;
        s.requests = responses;
        s.errors = errors;
        const double span = s.elapsed_s - sampled_at_;
        s.rps = span > 0 ? static_cast<double>(responses - sampled_responses_) / span : 0.0;
        sampled_at_ = s.elapsed_s;
        sampled_responses_ = responses;
        sink_(s);
    }

    const std::vector<std::unique_ptr<Worker>>& workers_;
    ProgressStyle style_;
    std::int64_t start_;
    const ProgressSink& sink_;
    IntervalLog* hlog_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::size_t finished_ = 0;
    bool drawn_ = false;
    std::uint64_t drawn_responses_ = 0;
    double sampled_at_ = 0;
    std::uint64_t sampled_responses_ = 0;
};

std::vector<WorkerConfig> plan(const Options& o, std::string_view head, std::string_view body,
                               const std::string& target, const std::atomic<bool>& stop, RequestBudget* budget,
                               std::int64_t start, IntervalLog* hlog) {
    WorkerConfig base;
    resolve(o.url, base);
    base.request = head;
    base.body = body;
    base.target = target;
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
        c.hlog = hlog;
        c.index = i;
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

RunResult run_load(const Options& options, std::string_view head, std::string_view body,
                   const std::atomic<bool>& stop, ProgressStyle progress, const ProgressSink& sink) {
    timespec wall{};
    clock_gettime(CLOCK_REALTIME, &wall);
    const std::int64_t start = now_ns();
    const std::string target = options.url.host.find(':') != std::string::npos
                                   ? "[" + options.url.host + "]:" + std::to_string(options.url.port)
                                   : options.url.host + ":" + std::to_string(options.url.port);
    std::unique_ptr<RequestBudget> budget;
    if (options.requests > 0) {
        budget = std::make_unique<RequestBudget>(options.requests);
    }
    std::vector<std::unique_ptr<Worker>> workers;
    const double start_epoch = static_cast<double>(wall.tv_sec) + static_cast<double>(wall.tv_nsec) / 1e9;
    std::unique_ptr<IntervalLog> hlog;
    if (!options.hlog.empty()) {
        hlog = std::make_unique<IntervalLog>(options.hlog, start_epoch, start, options.hlog_interval_ns, options.threads);
    }
    for (const WorkerConfig& config : plan(options, head, body, target, stop, budget.get(), start, hlog.get())) {
        workers.push_back(std::make_unique<Worker>(config));
    }
    ProgressWatch watch(workers, progress, start, sink, hlog.get());
    std::vector<std::thread> threads;
    for (auto& w : workers) {
        threads.emplace_back([&watch, worker = w.get()] {
            worker->run();
            watch.worker_finished();
        });
    }
    watch.wait_all();
    RunResult result;
    result.start_epoch = start_epoch;
    std::int64_t end = start;
    for (std::size_t i = 0; i < threads.size(); ++i) {
        threads[i].join();
        result.totals.merge(workers[i]->totals());
        end = std::max(end, workers[i]->finished_ns());
    }
    result.seconds = static_cast<double>(end - start) / 1e9;
    if (hlog) {
        hlog->finish(end, options, result);
    }
    return result;
}

BodyFile::BodyFile(const std::string& path) {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        throw InputError("--body-file " + path + ": " + errno_line(errno));
    }
    struct stat st{};
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        const int error = errno;
        close(fd);
        throw InputError("--body-file " + path + ": " +
                         (S_ISDIR(st.st_mode) ? std::string("is a directory, not a regular file")
                          : error == 0        ? std::string("not a regular file")
                                              : errno_line(error)));
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {
        map_ = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map_ == MAP_FAILED) {
            const int error = errno;
            map_ = nullptr;
            close(fd);
            throw InputError("--body-file " + path + ": mmap: " + errno_line(error));
        }
    }
    close(fd);
    // Check that the bytes can be read now, not with a SIGBUS in a worker.
    char probe = 0;
    const int check = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (check < 0 || (size_ > 0 && read(check, &probe, 1) != 1)) {
        const int error = errno;
        if (check >= 0) close(check);
        throw InputError("--body-file " + path + ": read: " + errno_line(error ? error : EIO));
    }
    close(check);
}

BodyFile::~BodyFile() {
    if (map_ != nullptr) munmap(map_, size_);
}

std::string check_descriptor_limit(int connections) {
    // Each connection takes one descriptor; the epoll sets, stdio and the log take a few more.
    const auto need = static_cast<rlim_t>(connections) + 64;
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) < 0 || limit.rlim_cur >= need) return {};
    if (limit.rlim_max == RLIM_INFINITY || limit.rlim_max >= need) {
        limit.rlim_cur = need;
        if (setrlimit(RLIMIT_NOFILE, &limit) == 0) return {};
    } else if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    getrlimit(RLIMIT_NOFILE, &limit);
    return "-c " + std::to_string(connections) + " needs about " + std::to_string(need) +
           " file descriptors but the limit is " + std::to_string(limit.rlim_cur) +
           " (ulimit -n): connections beyond it will fail with EMFILE (out of descriptors)";
}

std::string wait_for_start(double epoch_seconds, const std::atomic<bool>& stop) {
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    const double wall = static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
    if (epoch_seconds <= wall) {
        char line[160];
        std::snprintf(line, sizeof line, "--start-at %.3f is %.3fs in the past: starting now", epoch_seconds,
                      wall - epoch_seconds);
        return line;
    }
    const auto whole = static_cast<time_t>(epoch_seconds);
    const timespec at{whole, static_cast<long>((epoch_seconds - static_cast<double>(whole)) * 1e9)};
    // Sleep in slices so SIGINT (which only sets `stop`) ends the wait too.
    while (!stop.load(std::memory_order_relaxed)) {
        clock_gettime(CLOCK_REALTIME, &now);
        if (now.tv_sec > at.tv_sec || (now.tv_sec == at.tv_sec && now.tv_nsec >= at.tv_nsec)) break;
        timespec slice = now;
        slice.tv_nsec += 100'000'000;
        if (slice.tv_nsec >= 1'000'000'000) {
            slice.tv_nsec -= 1'000'000'000;
            ++slice.tv_sec;
        }
        const bool last = slice.tv_sec > at.tv_sec || (slice.tv_sec == at.tv_sec && slice.tv_nsec >= at.tv_nsec);
        const timespec until = last ? at : slice;
        clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &until, nullptr);
    }
    return {};
}

}  // namespace okserve::loadgen
