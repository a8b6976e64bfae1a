// The claim protocol between a dispatcher and a worker, raced on real threads: a
// connection has one owner at a time, and no event is lost while it is busy.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include "server/modes/handoff.hpp"

using okserve::Config;
using okserve::ConnectionRules;
using okserve::SharedConnection;

TEST_SUITE("handoff") {

TEST_CASE("one owner at a time, and every event is seen, over many races") {
    Config cfg;
    ConnectionRules rules(cfg);
    SharedConnection c(rules, 0);
    c.state.store(SharedConnection::busy);  // the worker owns it first, as after accept

    constexpr int events = 200000;
    std::atomic<int> owners{1};       // threads that believe they own it right now
    std::atomic<int> max_owners{1};
    std::atomic<int> handed{0};       // claims that gave the dispatcher ownership
    std::atomic<bool> done{false};
    std::atomic<int> delivered{0};    // events the dispatcher has raised
    std::atomic<int> seen{0};         // events an owner has looked at
    const auto own = [&] {
        const int now = owners.fetch_add(1) + 1;
        int m = max_owners.load();
        while (now > m && !max_owners.compare_exchange_weak(m, now)) {}
    };

    // The worker: owns it, "works" (looks at every event so far), and tries to park.
    // A failed park means an event came meanwhile: it still owns it and looks again.
    std::thread worker([&] {
        bool mine = true;
        for (;;) {
            if (!mine) {
                if (handed.load() == 0) {
                    if (done.load()) break;
                    std::this_thread::yield();
                    continue;
                }
                handed.fetch_sub(1);
                own();
                mine = true;
            }
            seen.store(delivered.load());  // everything raised so far is looked at
            owners.fetch_sub(1);
            if (c.try_park()) {
                mine = false;
            } else {
                own();  // still ours
            }
        }
    });
    // The dispatcher: raises events; a claim that succeeds hands it to the worker.
    std::thread dispatcher([&] {
        for (int i = 0; i < events; ++i) {
            delivered.fetch_add(1);
            if (c.claim_for_event(EPOLLIN)) {
                own();
                owners.fetch_sub(1);  // handed straight over to the worker
                handed.fetch_add(1);
            } else if (i % 7 == 0 && c.claim_if_parked()) {  // a timer's claim
                own();
                owners.fetch_sub(1);
                handed.fetch_add(1);
            }
        }
        done.store(true);
    });
    dispatcher.join();
    worker.join();
    CHECK(max_owners.load() == 1);
    // The last event raised was looked at by an owner: none was lost while it was busy.
    CHECK(seen.load() == events);
    CHECK(c.state.load() == SharedConnection::parked);
}

}  // TEST_SUITE
