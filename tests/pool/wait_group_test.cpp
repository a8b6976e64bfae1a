// tests/pool/wait_group_test.cpp - WaitGroup: counting, waiting with and without a deadline, misuse.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "pool/wait_group.hpp"

namespace okserve::pool {
namespace {

using namespace std::chrono_literals;

TEST_SUITE("wait_group") {
    TEST_CASE("wait returns once every added piece of work is done") {
        WaitGroup wg;
        wg.add(4);
        std::vector<std::thread> threads;
        for (int i = 0; i < 4; ++i) {
            threads.emplace_back([&] { wg.done(); });
        }
        REQUIRE(wg.wait_for(20s));
        CHECK(wg.count() == 0);
        for (auto& t : threads) {
            t.join();
        }
    }

    TEST_CASE("wait_until reports the deadline, then success once the count drops") {
        WaitGroup wg;
        wg.add(2);
        CHECK_FALSE(wg.wait_until(std::chrono::steady_clock::now() + 10ms));
        CHECK_FALSE(wg.wait_for(1ms));
        wg.done();
        CHECK(wg.count() == 1);
        std::thread last([&] { wg.done(); });
        CHECK(wg.wait_for(20s));
        last.join();
    }

    TEST_CASE("a zero count waits for nothing, and the group counts up again afterwards") {
        WaitGroup wg;
        wg.wait();
        CHECK(wg.wait_for(0ms));
        for (int round = 0; round < 3; ++round) {
            CAPTURE(round);
            wg.add(1);
            CHECK_FALSE(wg.wait_for(0ms));
            wg.done();
            CHECK(wg.wait_for(0ms));
        }
    }

    TEST_CASE("misuse throws logic_error and leaves the count unchanged") {
        WaitGroup wg;
        CHECK_THROWS_AS(wg.done(), std::logic_error);
        CHECK(wg.count() == 0);
        wg.add(2);
        CHECK_THROWS_AS(wg.add(-3), std::logic_error);
        CHECK(wg.count() == 2);
        wg.add(-2);
        CHECK(wg.count() == 0);
        CHECK_THROWS_AS(wg.done(), std::logic_error);
        CHECK(wg.count() == 0);
    }

    TEST_CASE("many waiters are all released") {
        WaitGroup wg;
        wg.add(1);
        std::atomic<int> released{0};
        std::vector<std::thread> waiters;
        for (int i = 0; i < 3; ++i) {
            waiters.emplace_back([&] {
                if (wg.wait_for(20s)) {
                    released.fetch_add(1);
                }
            });
        }
        wg.done();
        for (auto& t : waiters) {
            t.join();
        }
        CHECK(released.load() == 3);
    }
}

}  // namespace
}  // namespace okserve::pool
