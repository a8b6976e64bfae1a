// tools/bench/pool_bench.cpp - okserve::pool::Pool against a plain mutex + condition_variable
// + std::deque<std::function<void()>> pool: throughput of empty jobs and hand-off latency.
//
// Usage: pool_bench [--quick] [--rounds N] [--only throughput|handoff] [--cell PxW]
//                   [--pin] [--csv FILE]
// Every round checks that each job ran exactly once (a checksum of job ids); a wrong sum
// exits 1. Slowness never fails: the numbers are printed as a markdown table, with ratios.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <mutex>
#include <sched.h>
#include <string>
#include <thread>
#include <vector>

#include "pool/pool.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t queue_size = 1024;

// --pin: producers on one CPU, workers on another (as the server benchmark pins the load
// generator and the server apart): the first two CPUs this process may use. Off by
// default: then the scheduler places the threads, as it would in a real program.
bool pin_threads = false;
int producer_cpu = -1, worker_cpu = -1;
enum class Side { producer, worker };

bool choose_cpus() {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) {
        return false;
    }
    for (int c = 0; c < CPU_SETSIZE && worker_cpu < 0; ++c) {
        if (CPU_ISSET(c, &allowed)) {
            (producer_cpu < 0 ? producer_cpu : worker_cpu) = c;
        }
    }
    return worker_cpu >= 0;
}

std::string placement() {
    if (!pin_threads) {
        return "threads unpinned";
    }
    return "producers on CPU " + std::to_string(producer_cpu) + ", workers on CPU " + std::to_string(worker_cpu);
}

void pin(Side side) {
    if (!pin_threads) {
        return;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(side == Side::producer ? producer_cpu : worker_cpu, &set);
    sched_setaffinity(0, sizeof set, &set);  // best effort: a failure leaves the thread unpinned
}

// The baseline: the textbook bounded blocking pool. It notifies on every push and pop,
// and stores each job in a std::function inside a std::deque.
class BaselinePool {
public:
    BaselinePool(std::size_t workers, std::size_t capacity) : capacity_(capacity) {
        for (std::size_t i = 0; i < workers; ++i) {
            threads_.emplace_back([this] {
                pin(Side::worker);
                work();
            });
        }
    }
    ~BaselinePool() { shutdown(); }

    void submit(std::function<void()> f) {
        std::unique_lock lock(mu_);
        not_full_.wait(lock, [this] { return queue_.size() < capacity_ || stop_; });
        queue_.push_back(std::move(f));
        lock.unlock();
        not_empty_.notify_one();
    }

    void shutdown() {
        {
            std::lock_guard lock(mu_);
            stop_ = true;
        }
        not_empty_.notify_all();
        for (auto& t : threads_) {
            if (t.joinable()) {
                t.join();
            }
        }
    }

private:
    void work() {
        for (;;) {
            std::unique_lock lock(mu_);
            not_empty_.wait(lock, [this] { return !queue_.empty() || stop_; });
            if (queue_.empty()) {
                return;
            }
            std::function<void()> f = std::move(queue_.front());
            queue_.pop_front();
            lock.unlock();
            not_full_.notify_one();
            f();
        }
    }

    std::mutex mu_;
    std::condition_variable not_empty_;
    std::condition_variable not_full_;
    std::deque<std::function<void()>> queue_;
    std::size_t capacity_;
    bool stop_ = false;
    std::vector<std::thread> threads_;
};

// One interface over both pools, so every measurement runs the same code for each.
struct OkservePool {
    okserve::pool::Pool pool;
    OkservePool(std::size_t workers, std::size_t qsize)
        : pool(okserve::pool::Options{
              .max_workers = workers, .queue_size = qsize, .on_worker_start = [] { pin(Side::worker); }}) {}
    template <class F>
    bool submit(F&& f) {
        return pool.submit(std::forward<F>(f)) == okserve::pool::Submit::accepted;
    }
    void shutdown() { pool.shutdown(); }
};

struct Baseline {
    BaselinePool pool;
    Baseline(std::size_t workers, std::size_t qsize) : pool(workers, workers + qsize) {}
    template <class F>
    bool submit(F&& f) {
        pool.submit(std::forward<F>(f));
        return true;
    }
    void shutdown() { pool.shutdown(); }
};

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "pool_bench: %s\n", what);
    std::exit(1);
}

// Jobs per second for `jobs` empty jobs split over `producers` threads. Each job adds its
// id to a sum, so a lost or doubled job changes the result and the run fails.
template <class P>
double throughput(std::size_t producers, std::size_t workers, std::uint64_t jobs) {
    P pool(workers, queue_size);
    std::atomic<std::uint64_t> sum{0};
    std::atomic<bool> refused{false};
    const std::uint64_t per = jobs / producers;
    const auto start = Clock::now();
    std::vector<std::thread> threads;
    for (std::size_t p = 0; p < producers; ++p) {
        threads.emplace_back([&, p] {
            pin(Side::producer);
            for (std::uint64_t i = 0; i < per; ++i) {
                const std::uint64_t id = p * per + i;
                if (!pool.submit([&sum, id] { sum.fetch_add(id, std::memory_order_relaxed); })) {
                    refused = true;
                }
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    pool.shutdown();
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    const std::uint64_t n = per * producers;
    if (refused || sum.load() != n * (n - 1) / 2) {
        fail("checksum mismatch: a job was lost or ran twice");
    }
    return static_cast<double>(n) / secs;
}

// Hand-off latency with idle workers: submit one job, note when it starts, wait for it,
// let the workers fall asleep again, repeat. Returns the latencies in microseconds.
template <class P>
std::vector<double> handoff(std::size_t workers, std::size_t samples) {
    P pool(workers, queue_size);
    std::vector<double> us;
    us.reserve(samples);
    std::atomic<std::uint32_t> done{0};
    for (std::size_t i = 0; i < samples; ++i) {
        Clock::time_point started;
        const auto submitted = Clock::now();
        if (!pool.submit([&started, &done] {
                started = Clock::now();
                done.fetch_add(1, std::memory_order_release);
                done.notify_one();
            })) {
            fail("hand-off job refused");
        }
        for (std::uint32_t seen = done.load(std::memory_order_acquire); seen != i + 1;
             seen = done.load(std::memory_order_acquire)) {
            done.wait(seen, std::memory_order_acquire);
        }
        us.push_back(std::chrono::duration<double, std::micro>(started - submitted).count());
        std::this_thread::sleep_for(std::chrono::microseconds(200));  // workers go back to sleep
    }
    pool.shutdown();
    return us;
}

struct Summary {
    double median, min, max;
};

Summary summarize(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return {v[v.size() / 2], v.front(), v.back()};
}

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    const auto idx = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
    return v[idx];
}

std::string mjobs(const Summary& s) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%.2f (%.2f-%.2f)", s.median / 1e6, s.min / 1e6, s.max / 1e6);
    return buf;
}

struct Args {
    bool quick = false;
    int rounds = 7;
    std::string only;  // empty: both parts
    std::size_t cell_producers = 0, cell_workers = 0;  // --cell PxW (1, 2 or 4 each): only that cell
    std::string csv;
};

// The thread counts the throughput table has: 1, 2 and 4 producers and workers.
bool measured(std::size_t threads) {
    return threads == 1 || threads == 2 || threads == 4;
}

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--quick") == 0) {
            a.quick = true;
            a.rounds = 3;
        } else if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            a.rounds = std::max(1, std::atoi(argv[++i]));
        } else if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc &&
                   (std::strcmp(argv[i + 1], "throughput") == 0 || std::strcmp(argv[i + 1], "handoff") == 0)) {
            a.only = argv[++i];
        } else if (std::strcmp(argv[i], "--pin") == 0) {
            pin_threads = choose_cpus();
            if (!pin_threads) {
                std::fprintf(stderr, "pool_bench: --pin needs two CPUs; the threads stay unpinned\n");
            }
        } else if (std::strcmp(argv[i], "--cell") == 0 && i + 1 < argc &&
                   std::sscanf(argv[i + 1], "%zux%zu", &a.cell_producers, &a.cell_workers) == 2 &&
                   measured(a.cell_producers) && measured(a.cell_workers)) {
            ++i;
            a.only = "throughput";
        } else if (std::strcmp(argv[i], "--csv") == 0 && i + 1 < argc) {
            a.csv = argv[++i];
        } else {
            std::fprintf(stderr,
                         "usage: pool_bench [--quick] [--rounds N] [--only throughput|handoff] "
                         "[--cell PxW, P and W 1, 2 or 4] [--pin] [--csv FILE]\n");
            std::exit(2);
        }
    }
    return a;
}

}  // namespace

int main(int argc, char** argv) {
    const Args args = parse(argc, argv);
    pin(Side::producer);  // with --pin, the hand-off test's submitter is this thread
    const std::uint64_t jobs = args.quick ? 40'000 : 1'000'000;
    const std::size_t samples = args.quick ? 200 : 2'000;
    std::string csv = "kind,pool,producers,workers,round,value\n";
    auto record = [&csv](const char* kind, const char* pool, std::size_t p, std::size_t w, int r, double v) {
        char line[160];
        std::snprintf(line, sizeof line, "%s,%s,%zu,%zu,%d,%.3f\n", kind, pool, p, w, r, v);
        csv += line;
    };

    if (args.only != "handoff") {
        std::printf("## Throughput: empty jobs, %llu per round, %d rounds, queue_size %zu, %s\n\n",
                    static_cast<unsigned long long>(jobs), args.rounds, queue_size, placement().c_str());
        std::printf(
            "| producers | workers | okserve Mjobs/s median (min-max) | baseline Mjobs/s "
            "median (min-max) | ratio |\n|---|---|---|---|---|\n");
        for (std::size_t producers : {1, 2, 4}) {
            for (std::size_t workers : {1, 2, 4}) {
                if (args.cell_producers != 0 &&
                    (producers != args.cell_producers || workers != args.cell_workers)) {
                    continue;
                }
                std::vector<double> ours, base;
                // Interleaved, so noise hits both alike, and each goes first every other
                // round, so neither always inherits the other's wake-up.
                for (int r = 0; r < args.rounds; ++r) {
                    if (r % 2 == 0) {
                        ours.push_back(throughput<OkservePool>(producers, workers, jobs));
                        base.push_back(throughput<Baseline>(producers, workers, jobs));
                    } else {
                        base.push_back(throughput<Baseline>(producers, workers, jobs));
                        ours.push_back(throughput<OkservePool>(producers, workers, jobs));
                    }
                    record("jobs_per_s", "okserve", producers, workers, r, ours.back());
                    record("jobs_per_s", "baseline", producers, workers, r, base.back());
                }
                const Summary o = summarize(ours), b = summarize(base);
                std::printf("| %zu | %zu | %s | %s | %.2fx |\n", producers, workers, mjobs(o).c_str(),
                            mjobs(b).c_str(), o.median / b.median);
                std::fflush(stdout);
            }
        }
        std::printf("\n");
    }
    if (args.only != "throughput") {
        // A p99 of one run on a shared machine is mostly noise. So the rounds are interleaved
        // (each pool going first every other round), the percentiles are taken over all the
        // rounds' samples together, and the spread of the single rounds' p99 is shown beside.
        std::printf("## Hand-off latency, submit to job start, idle workers, %d rounds of %zu samples, %s\n\n",
                    args.rounds, samples, placement().c_str());
        std::printf(
            "| workers | okserve p50 us | okserve p99 us (rounds: min-max) | baseline p50 us "
            "| baseline p99 us (rounds: min-max) | p99 ratio (baseline/okserve) |\n|---|---|---|---|---|---|\n");
        for (std::size_t workers : {1, 2}) {
            std::vector<double> all_ours, all_base, o99, b99;
            for (int r = 0; r < args.rounds; ++r) {
                std::vector<double> ours, base;
                if (r % 2 == 0) {
                    ours = handoff<OkservePool>(workers, samples);
                    base = handoff<Baseline>(workers, samples);
                } else {
                    base = handoff<Baseline>(workers, samples);
                    ours = handoff<OkservePool>(workers, samples);
                }
                o99.push_back(percentile(ours, 0.99));
                b99.push_back(percentile(base, 0.99));
                record("handoff_p50_us", "okserve", 1, workers, r, percentile(ours, 0.5));
                record("handoff_p99_us", "okserve", 1, workers, r, o99.back());
                record("handoff_p50_us", "baseline", 1, workers, r, percentile(base, 0.5));
                record("handoff_p99_us", "baseline", 1, workers, r, b99.back());
                all_ours.insert(all_ours.end(), ours.begin(), ours.end());
                all_base.insert(all_base.end(), base.begin(), base.end());
            }
            const Summary ob = summarize(o99), bb = summarize(b99);
            const double o_p99 = percentile(all_ours, 0.99), b_p99 = percentile(all_base, 0.99);
            std::printf("| %zu | %.1f | %.1f (%.1f-%.1f) | %.1f | %.1f (%.1f-%.1f) | %.2fx |\n", workers,
                        percentile(all_ours, 0.5), o_p99, ob.min, ob.max, percentile(all_base, 0.5), b_p99, bb.min,
                        bb.max, b_p99 / o_p99);
            std::fflush(stdout);
        }
    }

    if (!args.csv.empty()) {
        std::ofstream out(args.csv);
        out << csv;
        if (!out) {
            fail("cannot write the CSV file");
        }
    }
    return 0;
}
