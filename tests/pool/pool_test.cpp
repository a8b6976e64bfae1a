// tests/pool/pool_test.cpp - Pool: running jobs, failures, the capacity rule, backpressure,
// timeouts, the priority lane and many producers at once.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <future>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <thread>
#include <vector>

#include "pool/pool.hpp"
#include "tests/pool/pool_support.hpp"

namespace okserve::pool {
namespace {

using namespace std::chrono_literals;
using test::eventually;
using test::Gate;

// Fills the pool exactly: max_workers jobs that block on `gate`, then queue_size more.
// Returns how many try_submit calls were accepted before the first refusal.
std::size_t fill(Pool& pool, Gate& gate, std::size_t limit) {
    std::size_t taken = 0;
    while (taken < limit && pool.try_submit([&gate] { gate.wait(); }) == Submit::accepted) {
        ++taken;
    }
    return taken;
}

TEST_SUITE("pool") {
    TEST_CASE("every submitted job runs, and the stats add up") {
        std::atomic<int> ran{0};
        Pool pool(Options{.max_workers = 2, .queue_size = 8});
        for (int i = 0; i < 100; ++i) {
            REQUIRE(pool.submit([&ran] { ran.fetch_add(1); }) == Submit::accepted);
        }
        CHECK(pool.shutdown().unfinished == 0);
        CHECK(ran.load() == 100);
        const Stats s = pool.stats();
        CHECK(s.accepted == 100);
        CHECK(s.completed == 100);
        CHECK(s.failed == 0);
        CHECK(s.queued == 0);
        CHECK(s.in_flight == 0);
        CHECK(s.max_depth >= 1);
        CHECK(std::accumulate(s.per_worker.begin(), s.per_worker.end(), std::uint64_t{0}) == 100);
    }

    TEST_CASE("on_worker_start runs once in every worker thread, before its first job") {
        std::mutex mu;
        std::vector<std::thread::id> started;
        Options o{.max_workers = 3, .queue_size = 4};
        o.on_worker_start = [&] {
            std::lock_guard lock(mu);
            started.push_back(std::this_thread::get_id());
        };
        Pool pool(std::move(o));
        std::atomic<bool> seen_by_job{true};
        for (int i = 0; i < 30; ++i) {
            REQUIRE(pool.submit([&] {
                std::lock_guard lock(mu);
                if (std::find(started.begin(), started.end(), std::this_thread::get_id()) == started.end()) {
                    seen_by_job = false;
                }
            }) == Submit::accepted);
        }
        pool.shutdown();
        CHECK(started.size() == 3);
        CHECK(seen_by_job.load());
    }

    TEST_CASE("on_idle: called with nothing queued, again while it finds work, never once shut down") {
        // The hook stands for work the pool does not queue (a server's ready connections).
        // While `hold` is set it waits inside until `answer` is given: 1 found work, 0 none.
        std::atomic<int> calls{0}, found{3}, answer{-1};
        std::atomic<bool> hold{false}, inside{false};
        Options o{.max_workers = 1, .queue_size = 4};
        o.on_idle = [&] {
            calls.fetch_add(1);
            if (!hold.load()) return found.fetch_sub(1) > 0;
            hold = false;
            inside = true;
            eventually([&] { return answer.load() >= 0; });
            inside = false;
            return answer.exchange(-1) == 1;
        };
        Pool pool(std::move(o));
        // Nothing queued at start: 3 calls that find work, a 4th that finds none, then the
        // worker sleeps and calls it no more.
        REQUIRE(eventually([&] { return calls.load() >= 4; }));
        std::this_thread::sleep_for(50ms);  // a spinning worker would have called it again
        CHECK(calls.load() == 4);
        // A job submitted while the worker is inside the hook wakes nobody (the worker is
        // not asleep); it must still run, whichever the hook answers.
        for (const int found_work : {1, 0}) {
            CAPTURE(found_work);
            hold = true;
            REQUIRE(pool.submit([] {}) == Submit::accepted);  // wakes the worker; after it, the hook
            REQUIRE(eventually([&] { return inside.load(); }));
            std::promise<void> ran;
            REQUIRE(pool.submit([&ran] { ran.set_value(); }) == Submit::accepted);
            answer = found_work;
            REQUIRE(ran.get_future().wait_for(test::hang_limit) == std::future_status::ready);
        }
        // Once shut down, a worker that finds the lanes empty leaves without calling it.
        pool.shutdown();
        const int at_shutdown = calls.load();
        std::this_thread::sleep_for(20ms);
        CHECK(calls.load() == at_shutdown);
        CHECK(pool.stats().completed == 4);
    }

    TEST_CASE("bad options are refused at construction") {
        CHECK_THROWS_AS(Pool(Options{.max_workers = 0}), std::invalid_argument);
        CHECK_THROWS_AS(Pool(Options{.max_workers = 2, .min_workers = 3}), std::invalid_argument);
        CHECK_THROWS_AS(Pool(Options{.max_workers = 2, .min_workers = 1, .idle_timeout = 0ms}),
                        std::invalid_argument);
        Pool ok(Options{.max_workers = 3, .queue_size = 5});
        CHECK(ok.capacity() == 8);
    }

    TEST_CASE("throwing or failing jobs are counted as failed and workers carry on") {
        std::atomic<int> ran{0};
        Pool pool(Options{.max_workers = 2, .queue_size = 16});
        for (int i = 0; i < 10; ++i) {
            REQUIRE(pool.submit([] { throw std::runtime_error("job failed"); }) == Submit::accepted);
            REQUIRE(pool.submit([] { return false; }) == Submit::accepted);
            REQUIRE(pool.submit([&ran] { ran.fetch_add(1); }) == Submit::accepted);
        }
        pool.shutdown();
        const Stats s = pool.stats();
        CHECK(ran.load() == 10);
        CHECK(s.failed == 20);
        CHECK(s.completed == 10);
    }

    TEST_CASE("submit_task delivers the result or the exception to the submitter") {
        Pool pool(Options{.max_workers = 1});
        std::future<int> value = pool.submit_task([] { return 42; });
        std::future<void> thrown = pool.submit_task([] { throw std::runtime_error("boom"); });
        std::future<bool> token = pool.submit_task([](std::stop_token st) { return st.stop_possible(); });
        REQUIRE(value.wait_for(test::hang_limit) == std::future_status::ready);
        CHECK(value.get() == 42);
        // Join first: ThreadSanitizer can't see exception_ptr's reference count (it lives in
        // the uninstrumented libstdc++), so reading an exception while the worker may still
        // be destroying the promise would be reported as a race.
        pool.shutdown();
        CHECK_THROWS_AS(thrown.get(), std::runtime_error);
        CHECK(token.get());
        CHECK(pool.stats().failed == 1);
        std::future<int> late = pool.submit_task([] { return 1; });
        CHECK_THROWS_AS(late.get(), std::future_error);  // refused: broken promise, not a hang
    }

    TEST_CASE("capacity is max_workers + queue_size: running jobs count until they finish") {
        struct Case {
            std::size_t workers, queue;
        };
        const Case cases[] = {{1, 0}, {1, 3}, {2, 3}, {3, 1}};
        for (const Case& c : cases) {
            CAPTURE(c.workers);
            CAPTURE(c.queue);
            Gate gate;
            Pool pool(Options{.max_workers = c.workers, .queue_size = c.queue});
            CHECK(fill(pool, gate, 100) == c.workers + c.queue);
            // Once every worker holds a job, the rest wait in the ring: the same total.
            REQUIRE(eventually([&] { return pool.stats().in_flight == c.workers; }));
            CHECK(pool.stats().queued == c.queue);
            CHECK(pool.stats().rejected == 1);  // fill() stopped at its first refusal
            Job extra([] {});
            CHECK(pool.try_submit(std::move(extra)) == Submit::full);
            CHECK(extra);  // refused: the caller still owns its job
            CHECK(pool.stats().rejected == 2);
            gate.open();
            pool.shutdown();
            CHECK(pool.stats().completed == c.workers + c.queue);
        }
    }

    TEST_CASE("a blocking submit waits while full and returns as soon as room frees") {
        Gate gate;
        Pool pool(Options{.max_workers = 1, .queue_size = 1});
        REQUIRE(fill(pool, gate, 10) == 2);
        std::atomic<bool> returned{false};
        auto blocked = std::async(std::launch::async, [&] {
            const Submit r = pool.submit([] {});
            returned = true;
            return r;
        });
        REQUIRE(eventually([&] { return pool.stats().waiting_submitters == 1; }));
        CHECK_FALSE(returned.load());
        gate.open();
        REQUIRE(blocked.wait_for(test::hang_limit) == std::future_status::ready);
        CHECK(blocked.get() == Submit::accepted);
        pool.shutdown();
        CHECK(pool.stats().completed == 3);
    }

    TEST_CASE("submit_for times out on a full pool and leaves the job with the caller") {
        Gate gate;
        Pool pool(Options{.max_workers = 1, .queue_size = 0});
        REQUIRE(fill(pool, gate, 10) == 1);
        Job job([] {});
        CHECK(pool.submit_for(std::move(job), 5ms) == Submit::timed_out);
        CHECK(pool.submit_until(std::move(job), Pool::Clock::now() - 1s) == Submit::timed_out);
        CHECK(job);
        CHECK(pool.stats().rejected == 3);  // fill()'s refusal and these two
        gate.open();
        CHECK(pool.submit_for(std::move(job), test::hang_limit) == Submit::accepted);
        CHECK_FALSE(job);
    }

    TEST_CASE("the priority lane overtakes a full normal queue") {
        Gate gate;
        std::mutex mu;
        std::vector<int> order;
        Pool pool(Options{.max_workers = 1, .queue_size = 3, .priority_size = 2});
        auto record = [&](int id) {
            return [&, id] {
                std::lock_guard lock(mu);
                order.push_back(id);
            };
        };
        REQUIRE(pool.try_submit([&gate] { gate.wait(); }) == Submit::accepted);
        for (int id = 1; id <= 3; ++id) {
            REQUIRE(pool.try_submit(record(id)) == Submit::accepted);
        }
        CHECK(pool.try_submit(record(99)) == Submit::full);
        CHECK(pool.try_submit_priority(record(100)) == Submit::accepted);
        CHECK(pool.try_submit_priority(record(101)) == Submit::accepted);
        CHECK(pool.try_submit_priority(record(102)) == Submit::full);
        gate.open();
        pool.shutdown();
        CHECK(order == std::vector<int>{100, 101, 1, 2, 3});
    }

    TEST_CASE("many producers: every job runs exactly once (checksum)") {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || !defined(__OPTIMIZE__)
        constexpr std::uint64_t per_producer = 20'000;
#else
        constexpr std::uint64_t per_producer = 1'000'000;
#endif
        constexpr std::uint64_t producers = 8;
        std::atomic<std::uint64_t> sum{0};
        std::atomic<std::uint64_t> count{0};
        Pool pool(Options{.max_workers = 2, .queue_size = 1024});
        std::vector<std::thread> threads;
        std::atomic<std::uint64_t> refused{0};
        for (std::uint64_t p = 0; p < producers; ++p) {
            threads.emplace_back([&, p] {
                for (std::uint64_t i = 0; i < per_producer; ++i) {
                    const std::uint64_t id = p * per_producer + i;
                    auto job = [&sum, &count, id] {
                        sum.fetch_add(id, std::memory_order_relaxed);
                        count.fetch_add(1, std::memory_order_relaxed);
                    };
                    if (pool.submit(job) != Submit::accepted) {
                        refused.fetch_add(1);
                    }
                }
            });
        }
        for (auto& t : threads) {
            t.join();
        }
        pool.shutdown();
        const std::uint64_t n = producers * per_producer;
        CHECK(refused.load() == 0);
        CHECK(count.load() == n);
        CHECK(sum.load() == n * (n - 1) / 2);
        CHECK(pool.stats().completed == n);
    }
}

}  // namespace
}  // namespace okserve::pool
