// tests/pool/parker_test.cpp - Parker: a wake-up before the sleep is kept, a deadline ends
// the sleep, and two threads taking turns through two parkers never hang.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "pool/parker.hpp"
#include "tests/pool/pool_support.hpp"

namespace okserve::pool {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST_SUITE("pool") {
    TEST_CASE("an unpark before park leaves a token: park returns at once, once") {
        Parker p;
        p.unpark();
        p.unpark();  // tokens do not add up: one is enough to wake one park
        const auto deadline = Clock::now() + test::hang_limit;
        CHECK(p.park(&deadline));
        const auto soon = Clock::now() + 20ms;
        CHECK_FALSE(p.park(&soon));  // the token was used
    }

    TEST_CASE("park with a deadline returns false once it has passed") {
        Parker p;
        const auto past = Clock::now() - 1s;
        CHECK_FALSE(p.park(&past));
        const auto start = Clock::now();
        const auto deadline = start + 30ms;
        CHECK_FALSE(p.park(&deadline));
        CHECK(Clock::now() >= deadline);
    }

    TEST_CASE("a parked thread wakes when another thread unparks it") {
        Parker p;
        std::atomic<bool> woke{false};
        std::thread sleeper([&] {
            const auto deadline = Clock::now() + test::hang_limit;
            woke = p.park(&deadline);
        });
        std::this_thread::sleep_for(20ms);  // most likely asleep by now; either way it must wake
        p.unpark();
        sleeper.join();
        CHECK(woke.load());
    }

    TEST_CASE("two threads taking turns through two parkers: no wake-up is lost") {
        constexpr int turns = 20'000;
        Parker ping, pong;
        std::atomic<int> lost{0};
        std::thread other([&] {
            for (int i = 0; i < turns; ++i) {
                const auto deadline = Clock::now() + test::hang_limit;
                if (!ping.park(&deadline)) {
                    lost.fetch_add(1);
                    return;
                }
                pong.unpark();
            }
        });
        for (int i = 0; i < turns; ++i) {
            ping.unpark();
            const auto deadline = Clock::now() + test::hang_limit;
            if (!pong.park(&deadline)) {
                lost.fetch_add(1);
                break;
            }
        }
        other.join();
        CHECK(lost.load() == 0);
    }
}

}  // namespace
}  // namespace okserve::pool
