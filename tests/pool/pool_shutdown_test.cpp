// tests/pool/pool_shutdown_test.cpp - Pool: graceful drain (with and without a deadline),
// cancel, refusal after shutdown, destruction while running, and dynamic sizing.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <thread>

#include "pool/pool.hpp"
#include "tests/pool/pool_support.hpp"

namespace okserve::pool {
namespace {

using namespace std::chrono_literals;
using test::eventually;
using test::Gate;
using test::Tracked;

TEST_SUITE("pool") {
    TEST_CASE("graceful shutdown runs every job already queued or running") {
        Gate gate;
        std::atomic<int> ran{0};
        Pool pool(Options{.max_workers = 1, .queue_size = 50});
        REQUIRE(pool.submit([&gate] { gate.wait(); }) == Submit::accepted);
        for (int i = 0; i < 50; ++i) {
            REQUIRE(pool.submit([&ran] { ran.fetch_add(1); }) == Submit::accepted);
        }
        auto drained = std::async(std::launch::async, [&] { return pool.shutdown(); });
        // Shutdown has begun once a submission is refused; only then let the worker go.
        REQUIRE(eventually([&] { return pool.try_submit([] {}) == Submit::closed; }));
        CHECK(ran.load() == 0);
        gate.open();
        REQUIRE(drained.wait_for(test::hang_limit) == std::future_status::ready);
        CHECK(drained.get().unfinished == 0);
        CHECK(ran.load() == 50);
        CHECK(pool.stats().workers == 0);
    }

    TEST_CASE("a drain with a deadline reports queued plus running jobs it could not finish") {
        Gate gate;
        std::atomic<int> ran{0};
        Pool pool(Options{.max_workers = 1, .queue_size = 8});
        REQUIRE(pool.submit([&gate] { gate.wait(); }) == Submit::accepted);
        for (int i = 0; i < 5; ++i) {
            REQUIRE(pool.submit([&ran] { ran.fetch_add(1); }) == Submit::accepted);
        }
        CHECK(pool.shutdown_until(Pool::Clock::now() + 20ms).unfinished == 6);
        gate.open();
        CHECK(pool.shutdown().unfinished == 0);  // the workers went on draining
        CHECK(ran.load() == 5);
    }

    TEST_CASE("every kind of submission is refused once shutdown began, and the job stays") {
        Pool pool(Options{.max_workers = 1});
        pool.shutdown();
        Job job([] {});
        CHECK(pool.submit(std::move(job)) == Submit::closed);
        CHECK(pool.try_submit(std::move(job)) == Submit::closed);
        CHECK(pool.submit_for(std::move(job), 1s) == Submit::closed);
        CHECK(pool.try_submit_priority(std::move(job)) == Submit::closed);
        CHECK(job);
        CHECK(pool.stats().refused_closed == 4);
    }

    TEST_CASE("a submitter blocked on a full pool is released with `closed` by shutdown") {
        Gate gate;
        Pool pool(Options{.max_workers = 1, .queue_size = 0});
        REQUIRE(pool.try_submit([&gate] { gate.wait(); }) == Submit::accepted);
        auto blocked = std::async(std::launch::async, [&] { return pool.submit([] {}); });
        REQUIRE(eventually([&] { return pool.stats().waiting_submitters == 1; }));
        auto drained = std::async(std::launch::async, [&] { return pool.shutdown(); });
        REQUIRE(blocked.wait_for(test::hang_limit) == std::future_status::ready);
        CHECK(blocked.get() == Submit::closed);
        gate.open();
        REQUIRE(drained.wait_for(test::hang_limit) == std::future_status::ready);
    }

    TEST_CASE("cancel stops running jobs through their stop_token and drops queued ones") {
        REQUIRE(Tracked::alive.load() == 0);
        std::atomic<bool> started{false};
        std::atomic<bool> saw_stop{false};
        Pool pool(Options{.max_workers = 1, .queue_size = 10});
        REQUIRE(pool.submit([&](std::stop_token stop) {
            started = true;
            std::mutex mu;
            std::condition_variable_any cv;
            std::unique_lock lock(mu);
            saw_stop =
                cv.wait_for(lock, stop, test::hang_limit, [] { return false; }) || stop.stop_requested();
        }) == Submit::accepted);
        REQUIRE(eventually([&] { return started.load(); }));
        std::atomic<int> ran{0};
        for (int i = 0; i < 10; ++i) {
            REQUIRE(pool.submit([t = Tracked{}, &ran] { ran.fetch_add(1); }) == Submit::accepted);
        }
        CHECK(Tracked::alive.load() == 10);
        CHECK(pool.cancel() == 10);
        CHECK(saw_stop.load());
        CHECK(ran.load() == 0);
        CHECK(Tracked::alive.load() == 0);  // dropped jobs released what they owned
        const Stats s = pool.stats();
        CHECK(s.dropped == 10);
        CHECK(s.completed == 1);
        CHECK(pool.try_submit([] {}) == Submit::closed);
    }

    TEST_CASE("a job that shuts down its own pool gets logic_error, not a deadlock") {
        Pool pool(Options{.max_workers = 1});
        std::future<void> from_job = pool.submit_task([&pool] { pool.shutdown(); });
        std::future<std::size_t> cancel_job = pool.submit_task([&pool] { return pool.cancel(); });
        CHECK(pool.shutdown().unfinished == 0);  // joined: see the submit_task test on why first
        REQUIRE(from_job.wait_for(0s) == std::future_status::ready);
        CHECK_THROWS_AS(from_job.get(), std::logic_error);
        CHECK_THROWS_AS(cancel_job.get(), std::logic_error);
        CHECK(pool.stats().failed == 2);
    }

    TEST_CASE("destroying a running pool drains it") {
        std::atomic<int> ran{0};
        {
            Pool pool(Options{.max_workers = 2, .queue_size = 100});
            for (int i = 0; i < 100; ++i) {
                REQUIRE(pool.try_submit([&ran] {
                    std::this_thread::yield();
                    ran.fetch_add(1);
                }) == Submit::accepted);
            }
        }
        CHECK(ran.load() == 100);
    }

    TEST_CASE("dynamic sizing adds workers when all are busy and retires idle ones") {
        Gate gate;
        Pool pool(Options{.max_workers = 3, .min_workers = 1, .queue_size = 4, .idle_timeout = 20ms});
        CHECK(pool.stats().workers == 1);
        CHECK(pool.capacity() == 7);
        for (int i = 0; i < 3; ++i) {
            REQUIRE(pool.submit([&gate] { gate.wait(); }) == Submit::accepted);
        }
        REQUIRE(eventually([&] { return pool.stats().in_flight == 3; }));
        CHECK(pool.stats().workers == 3);
        for (int i = 0; i < 4; ++i) {  // never more workers than max, whatever waits
            REQUIRE(pool.try_submit([] {}) == Submit::accepted);
        }
        CHECK(pool.stats().workers == 3);
        CHECK(pool.try_submit([] {}) == Submit::full);
        gate.open();
        REQUIRE(eventually([&] { return pool.stats().workers == 1; }));
        const Stats s = pool.stats();
        CHECK(s.completed == 7);
        CHECK(s.queued == 0);
        // The one left still serves, and the pool grows again under load.
        std::future<int> again = pool.submit_task([] { return 7; });
        REQUIRE(again.wait_for(test::hang_limit) == std::future_status::ready);
        CHECK(again.get() == 7);
    }
}

}  // namespace
}  // namespace okserve::pool
