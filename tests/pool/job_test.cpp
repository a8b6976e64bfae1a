// tests/pool/job_test.cpp - Job: both call shapes, both result shapes, inline and heap
// storage, moves, and release of what a job owns when it is dropped unrun.
#include <doctest/doctest.h>

#include <array>
#include <memory>
#include <stop_token>
#include <utility>

#include "pool/job.hpp"
#include "tests/pool/pool_support.hpp"

namespace okserve::pool {
namespace {

using test::Tracked;

TEST_SUITE("pool") {
    TEST_CASE("a Job runs callables taking a stop_token or nothing, returning void or bool") {
        std::stop_source source;
        int calls = 0;
        Job plain([&] { ++calls; });
        Job with_token([&](std::stop_token st) { calls += st.stop_possible() ? 10 : 0; });
        Job reports_failure([] { return false; });
        Job reports_success([](const std::stop_token&) { return true; });
        CHECK(plain(source.get_token()));
        CHECK(with_token(source.get_token()));
        CHECK_FALSE(reports_failure(source.get_token()));
        CHECK(reports_success(source.get_token()));
        CHECK(calls == 11);
    }

    TEST_CASE("an empty Job is false; moving leaves the source empty") {
        Job empty;
        CHECK_FALSE(empty);
        int calls = 0;
        Job a([&] { ++calls; });
        Job b(std::move(a));
        CHECK_FALSE(a);  // NOLINT(bugprone-use-after-move): the moved-from state is the contract
        REQUIRE(b);
        Job c;
        c = std::move(b);
        CHECK_FALSE(b);  // NOLINT(bugprone-use-after-move)
        REQUIRE(c);
        c(std::stop_token{});
        CHECK(calls == 1);
    }

    TEST_CASE("small and large callables both work; large ones go to the heap") {
        std::array<char, 200> big{};
        big[199] = 7;
        const std::array<char, Job::inline_size> fits{};
        int seen = 0;
        Job heap_job([big, &seen] { seen = big[199]; });
        Job inline_job([fits, &seen] { seen += static_cast<int>(fits.size()) > 0 ? 1 : 0; });
        Job moved(std::move(heap_job));
        moved(std::stop_token{});
        inline_job(std::stop_token{});
        CHECK(seen == 8);
    }

    TEST_CASE("a dropped Job releases the move-only resource it owns") {
        struct Case {
            const char* name;
            bool run_first;
            bool big;
        };
        const Case cases[] = {{"dropped, inline", false, false},
                              {"dropped, heap", false, true},
                              {"run, then destroyed", true, false}};
        for (const Case& c : cases) {
            CAPTURE(c.name);
            REQUIRE(Tracked::alive.load() == 0);
            {
                std::array<char, 100> padding{};
                Job job = c.big ? Job([t = Tracked{}, padding] { (void)padding; }) : Job([t = Tracked{}] {});
                CHECK(Tracked::alive.load() == 1);
                Job moved(std::move(job));
                CHECK(Tracked::alive.load() == 1);
                if (c.run_first) {
                    moved(std::stop_token{});
                }
            }
            CHECK(Tracked::alive.load() == 0);
        }
    }

    TEST_CASE("a Job may own a unique_ptr; reset() destroys it at once") {
        REQUIRE(Tracked::alive.load() == 0);
        auto owned = std::make_unique<Tracked>();
        bool ran = false;
        Job job([p = std::move(owned), &ran] { ran = p->owns; });
        job(std::stop_token{});
        CHECK(ran);
        CHECK(Tracked::alive.load() == 1);  // running does not destroy; the pool resets after
        job.reset();
        CHECK_FALSE(job);
        CHECK(Tracked::alive.load() == 0);
    }
}

}  // namespace
}  // namespace okserve::pool
