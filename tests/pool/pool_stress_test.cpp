// tests/pool/pool_stress_test.cpp - Pool under races: workers falling asleep between
// bursts, many threads fighting for the last places, and shutdown or cancel arriving
// while submitters are still pushing. Each test checks exact counts, not timings.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "pool/wait_group.hpp"
#include "pool/pool.hpp"
#include "tests/pool/pool_support.hpp"

namespace okserve::pool {
namespace {

using namespace std::chrono_literals;
using test::Gate;
using test::Tracked;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || !defined(__OPTIMIZE__)
constexpr int burst_rounds = 300;
#else
constexpr int burst_rounds = 2'000;
#endif

TEST_SUITE("pool") {
    TEST_CASE("bursts separated by idle gaps: no job is left behind by a worker falling asleep") {
        // Each gap lets the workers park, so every burst goes through the sleep handshake
        // (the race between a worker parking and a submitter pushing). A lost wake-up
        // would leave a job in the ring and the round would hit the hang limit.
        for (const std::size_t workers : {std::size_t{1}, std::size_t{3}}) {
            CAPTURE(workers);
            Pool pool(Options{.max_workers = workers, .queue_size = 8});
            std::mt19937 rng(12345);
            int stuck_rounds = 0;
            for (int round = 0; round < burst_rounds && stuck_rounds == 0; ++round) {
                const int jobs = 1 + static_cast<int>(rng() % 6);
                WaitGroup done;
                done.add(jobs);
                for (int j = 0; j < jobs; ++j) {
                    REQUIRE(pool.submit([&done] { done.done(); }) == Submit::accepted);
                }
                if (!done.wait_for(test::hang_limit)) {
                    ++stuck_rounds;
                }
                std::this_thread::sleep_for(std::chrono::microseconds(rng() % 200));
            }
            CHECK(stuck_rounds == 0);
            pool.shutdown();
            CHECK(pool.stats().accepted == pool.stats().completed);
        }
    }

    TEST_CASE("many threads racing for the last places: exactly the capacity is accepted") {
        Gate gate;
        Pool pool(Options{.max_workers = 2, .queue_size = 37});
        std::atomic<std::size_t> accepted{0};
        std::atomic<std::size_t> full{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < 8; ++t) {
            threads.emplace_back([&] {
                for (int i = 0; i < 50; ++i) {
                    const Submit r = pool.try_submit([&gate] { gate.wait(); });
                    (r == Submit::accepted ? accepted : full).fetch_add(1);
                }
            });
        }
        for (auto& t : threads) {
            t.join();
        }
        CHECK(accepted.load() == pool.capacity());
        CHECK(full.load() == 8 * 50 - pool.capacity());
        CHECK(pool.stats().rejected == full.load());
        gate.open();
        pool.shutdown();
        CHECK(pool.stats().completed == pool.capacity());
    }

    TEST_CASE("blocked submitters all get in, one freed place at a time") {
        // Four submitters wait on a full pool; the jobs ahead of them finish one by one.
        // Each freed place must reach a waiter even though only one wake-up is in flight
        // at a time: the woken one passes it on.
        Pool pool(Options{.max_workers = 1, .queue_size = 2});
        std::atomic<int> released{0};
        std::atomic<int> ran{0};
        auto slow = [&released, &ran] {
            const auto deadline = std::chrono::steady_clock::now() + test::hang_limit;
            while (released.load() == 0 && std::chrono::steady_clock::now() < deadline) {
                std::this_thread::sleep_for(1ms);
            }
            ran.fetch_add(1);
        };
        for (int i = 0; i < 3; ++i) {
            REQUIRE(pool.try_submit(slow) == Submit::accepted);
        }
        std::vector<std::thread> waiters;
        std::atomic<int> in{0};
        for (int i = 0; i < 4; ++i) {
            waiters.emplace_back([&] {
                if (pool.submit([&ran] { ran.fetch_add(1); }) == Submit::accepted) {
                    in.fetch_add(1);
                }
            });
        }
        REQUIRE(test::eventually([&] { return pool.stats().waiting_submitters == 4; }));
        released = 1;
        for (auto& t : waiters) {
            t.join();
        }
        CHECK(in.load() == 4);
        pool.shutdown();
        CHECK(ran.load() == 7);
    }

    TEST_CASE("shutdown while submitters push: every accepted job runs, every refused one stays") {
        for (int round = 0; round < 20; ++round) {
            Tracked::alive = 0;
            std::atomic<std::uint64_t> ran{0};
            std::atomic<std::uint64_t> accepted{0};
            std::atomic<std::uint64_t> kept{0};
            std::atomic<std::uint64_t> not_closed{0};
            Pool pool(Options{.max_workers = 2, .queue_size = 16});
            std::vector<std::thread> producers;
            for (int p = 0; p < 4; ++p) {
                producers.emplace_back([&] {
                    for (;;) {
                        Job job([t = Tracked{}, &ran] { ran.fetch_add(1); });
                        const Submit r = pool.submit(std::move(job));
                        if (r != Submit::accepted) {
                            if (r != Submit::closed) {
                                not_closed.fetch_add(1);
                            }
                            if (job) {
                                kept.fetch_add(1);  // refused: still ours, with what it owns
                            }
                            return;
                        }
                        accepted.fetch_add(1);
                    }
                });
            }
            std::this_thread::sleep_for(std::chrono::microseconds(200 * (round % 5)));
            CHECK(pool.shutdown().unfinished == 0);
            for (auto& t : producers) {
                t.join();
            }
            CHECK(ran.load() == accepted.load());
            CHECK(kept.load() == 4);
            CHECK(not_closed.load() == 0);
            CHECK(Tracked::alive.load() == 0);
            const Stats s = pool.stats();
            CHECK(s.accepted == accepted.load());
            CHECK(s.completed == accepted.load());
            CHECK(s.refused_closed == 4);
        }
    }

    TEST_CASE("cancel while submitters push: accepted = ran + dropped, nothing leaks") {
        for (int round = 0; round < 20; ++round) {
            Tracked::alive = 0;
            std::atomic<std::uint64_t> ran{0};
            std::atomic<std::uint64_t> accepted{0};
            Pool pool(Options{.max_workers = 2, .queue_size = 64});
            std::vector<std::thread> producers;
            for (int p = 0; p < 4; ++p) {
                producers.emplace_back([&] {
                    for (;;) {
                        const Submit r = pool.submit([t = Tracked{}, &ran] {
                            std::this_thread::yield();
                            ran.fetch_add(1);
                        });
                        if (r != Submit::accepted) {
                            return;
                        }
                        accepted.fetch_add(1);
                    }
                });
            }
            std::this_thread::sleep_for(std::chrono::microseconds(300 * (round % 4)));
            const std::size_t dropped = pool.cancel();
            for (auto& t : producers) {
                t.join();
            }
            CHECK(ran.load() + dropped == accepted.load());
            CHECK(Tracked::alive.load() == 0);
            const Stats s = pool.stats();
            CHECK(s.accepted == accepted.load());
            CHECK(s.completed + s.failed + s.dropped == s.accepted);
            CHECK(s.dropped == dropped);
        }
    }

    TEST_CASE("dynamic sizing under bursts: never more workers than max, every job runs") {
        Pool pool(Options{.max_workers = 4, .min_workers = 1, .queue_size = 8, .idle_timeout = 5ms});
        std::atomic<int> ran{0};
        std::size_t most = 0;
        for (int round = 0; round < 50; ++round) {
            for (int j = 0; j < 20; ++j) {
                REQUIRE(pool.submit([&ran] {
                    std::this_thread::sleep_for(50us);
                    ran.fetch_add(1);
                }) == Submit::accepted);
            }
            most = std::max(most, pool.stats().workers);
            if (round % 10 == 9) {
                std::this_thread::sleep_for(20ms);  // long enough for idle workers to retire
            }
        }
        pool.shutdown();
        CHECK(ran.load() == 50 * 20);
        CHECK(most <= 4);
        CHECK(most >= 2);  // it did grow under load
        CHECK(pool.stats().completed == 50 * 20);
    }
}

}  // namespace
}  // namespace okserve::pool
