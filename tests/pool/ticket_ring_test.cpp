// tests/pool/ticket_ring_test.cpp - TicketRing: order, the caller's limit, closing and
// draining, and many threads pushing and popping at once without losing or doubling a job.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "pool/ticket_ring.hpp"
#include "tests/pool/pool_support.hpp"

namespace okserve::pool {
namespace {

using Push = TicketRing::Push;

// Pushes a job that records `id` into `out` when run.
Push push_id(TicketRing& ring, int id, int& out, std::uint64_t limit, std::uint64_t& ticket) {
    Job job([&out, id] { out = id; });
    return ring.push(job, limit, ticket);
}

void run(Job& job) {
    std::stop_source source;
    REQUIRE(job);
    job(source.get_token());
}

TEST_SUITE("pool") {
    TEST_CASE("a TicketRing hands jobs out in order and rounds its cells up to a power of two") {
        TicketRing ring(5);
        CHECK(ring.cells() == 8);
        CHECK(ring.empty());
        int seen = 0;
        std::uint64_t ticket = 99;
        for (int id = 1; id <= 5; ++id) {
            REQUIRE(push_id(ring, id, seen, 1000, ticket) == Push::pushed);
            CHECK(ticket == static_cast<std::uint64_t>(id - 1));
        }
        CHECK(ring.size() == 5);
        CHECK(ring.pushed() == 5);
        for (int id = 1; id <= 5; ++id) {
            Job job;
            REQUIRE(ring.try_pop(job));
            run(job);
            CHECK(seen == id);
        }
        Job none;
        CHECK_FALSE(ring.try_pop(none));
        CHECK_FALSE(none);
        CHECK(ring.size() == 0);
    }

    TEST_CASE("a push at or past the caller's limit is refused and the job stays with the caller") {
        TicketRing ring(4);
        int seen = 0;
        std::uint64_t ticket = 0;
        REQUIRE(push_id(ring, 1, seen, 2, ticket) == Push::pushed);
        REQUIRE(push_id(ring, 2, seen, 2, ticket) == Push::pushed);
        Job third([&seen] { seen = 3; });
        CHECK(ring.push(third, 2, ticket) == Push::full);
        CHECK(third);
        CHECK(ring.push(third, 3, ticket) == Push::pushed);  // a higher limit lets it in
        CHECK_FALSE(third);
        CHECK(ticket == 2);
    }

    TEST_CASE("the cells are reused lap after lap") {
        TicketRing ring(2);
        int seen = 0;
        std::uint64_t ticket = 0;
        for (int id = 0; id < 1000; ++id) {
            REQUIRE(push_id(ring, id, seen, ring.pushed() + 1, ticket) == Push::pushed);
            Job job;
            REQUIRE(ring.try_pop(job));
            run(job);
            CHECK(seen == id);
        }
        CHECK(ring.pushed() == 1000);
    }

    TEST_CASE("after close a push is refused; drained() holds once every job was popped") {
        TicketRing ring(4);
        int seen = 0;
        std::uint64_t ticket = 0;
        REQUIRE(push_id(ring, 1, seen, 10, ticket) == Push::pushed);
        CHECK_FALSE(ring.closed());
        CHECK_FALSE(ring.drained());
        ring.close();
        CHECK(ring.closed());
        Job late([&seen] { seen = 2; });
        CHECK(ring.push(late, 10, ticket) == Push::closed);
        CHECK(late);
        CHECK_FALSE(ring.drained());  // ticket 0 is still inside
        Job job;
        REQUIRE(ring.try_pop(job));
        CHECK(ring.drained());
        CHECK(ring.pushed() == 1);
    }

    TEST_CASE("many threads push and pop at once: every job comes out exactly once") {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || !defined(__OPTIMIZE__)
        constexpr std::uint64_t per_producer = 20'000;
#else
        constexpr std::uint64_t per_producer = 200'000;
#endif
        constexpr std::uint64_t producers = 4;
        constexpr std::size_t room = 64;
        constexpr std::uint64_t total = producers * per_producer;
        TicketRing ring(room);
        // The admission rule the Pool uses: a ticket below (finished + room) may be taken.
        std::atomic<std::uint64_t> finished{0};
        std::atomic<std::uint64_t> sum{0};
        std::atomic<std::uint64_t> too_many{0};
        std::vector<std::thread> threads;
        for (std::uint64_t p = 0; p < producers; ++p) {
            threads.emplace_back([&, p] {
                for (std::uint64_t i = 0; i < per_producer; ++i) {
                    const std::uint64_t id = p * per_producer + i;
                    Job job([&sum, id] { sum.fetch_add(id, std::memory_order_relaxed); });
                    std::uint64_t ticket = 0;
                    while (ring.push(job, finished.load() + room, ticket) != Push::pushed) {
                        std::this_thread::yield();  // full: wait for a consumer
                    }
                    if (ring.size() > room) {
                        too_many.fetch_add(1);
                    }
                }
            });
        }
        for (int c = 0; c < 2; ++c) {
            threads.emplace_back([&] {
                std::stop_source source;
                while (finished.load() < total) {
                    Job job;
                    if (ring.try_pop(job)) {
                        job(source.get_token());
                        finished.fetch_add(1);
                    } else {
                        std::this_thread::yield();
                    }
                }
            });
        }
        for (auto& t : threads) {
            t.join();
        }
        CHECK(finished.load() == total);
        CHECK(sum.load() == total * (total - 1) / 2);
        CHECK(too_many.load() == 0);
        CHECK(ring.empty());
    }
}

}  // namespace
}  // namespace okserve::pool
