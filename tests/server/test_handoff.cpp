// SharedConnection's claim protocol on real threads: a dispatcher that delivers events
// (and now and then takes a parked connection, as a timer does) and a worker that owns it
// when handed a turn. No HTTP, no socket: the "socket" is a counter of events sent, and
// the worker's look at it stands for recv.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include <sys/epoll.h>

#include "server/config.hpp"
#include "server/connection.hpp"
#include "server/modes/handoff.hpp"

namespace okserve {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Where the threads run, atomics other than the state word are relaxed, but for the mailbox
// (dispatcher to worker) and `sent` (the socket, looked at before the work): so only the
// state word orders the worker's work before the dispatcher's next claim, and a weakened
// protocol shows as a data race under ThreadSanitizer.
constexpr auto relaxed = std::memory_order_relaxed;
constexpr std::uint32_t parked = SharedConnection::parked, busy = SharedConnection::busy,
                        pending = SharedConnection::pending;

// Everything the two threads share. Only `owned` is plain: its owner alone touches it, so
// the state word's orderings are all that keep it free of data races (ThreadSanitizer sees).
struct Bench {
    explicit Bench(const ConnectionRules& rules) : conn(rules, 0) {}

    SharedConnection conn;
    std::atomic<std::uint64_t> sent{0};   // events sent so far: what a look sees
    std::atomic<std::uint64_t> looks{0};  // the worker's looks so far: its progress
    std::atomic<std::uint64_t> waits{0};  // times the worker held on until an event came
    std::atomic<bool> awaiting_park{false};  // the dispatcher holds on until it is parked
    std::atomic<bool> hung{false};        // a wait passed the hang limit: both stop
    std::atomic<int> mailbox{0};          // 0 empty, 1 a turn to run, 2 stop
    std::atomic<int> owners{0};
    // Failures, counted; each must stay 0.
    std::atomic<int> two_owners{0}, lost{0}, parked_over_pending{0}, job_on_job{0};
    // Counted to show the races were run, not dodged.
    std::atomic<std::uint64_t> merged{0}, event_claims{0}, timer_claims{0}, failed_parks{0}, reclaims{0};

    struct Owned {
        std::uint64_t covered = 0;  // every event up to this one was looked at by an owner
        std::uint64_t turns = 0;
    } owned;

    void take_ownership() {
        if (owners.fetch_add(1, relaxed) != 0) two_owners.fetch_add(1, relaxed);
    }
    // Spins until `ready` holds, at first without giving up the CPU (a yield would be
    // slower than the other side); false (and both stop) at the hang limit.
    template <class Ready>
    bool spin_until(Ready ready) {
        const auto give_up = Clock::now() + 20s;
        for (std::uint32_t i = 1; !ready(); ++i) {
            if (i < 2'000) continue;
            if (hung.load(relaxed)) return false;
            if ((i & 1023) == 0 && Clock::now() > give_up) {
                hung.store(true, relaxed);
                return false;
            }
            std::this_thread::yield();
        }
        return true;
    }
};

// A short wait of a varying length, with no system call: x is the caller's random state.
void jitter(std::uint32_t& x, std::uint32_t most) {
    x = x * 1'664'525u + 1'013'904'223u;
    for (std::uint32_t i = (x >> 8) % most; i > 0; --i) std::atomic_signal_fence(std::memory_order_seq_cst);
}

// A worker's turn, shaped like Dispatcher::turn: forget pending events, look, work, try to
// park; a failed park means an event came meanwhile, so look again.
void run_turn(Bench& b, std::uint32_t& rnd) {
    b.conn.state.store(busy, std::memory_order_relaxed);  // the look below covers them
    for (;;) {
        // The look. recv's socket lock orders it after the store above; an RMW does here.
        const std::uint64_t seen = b.sent.fetch_add(0, std::memory_order_acq_rel);
        b.looks.fetch_add(1, relaxed);
        const std::uint64_t turn = ++b.owned.turns;
        b.owned.covered = seen;
        jitter(rnd, 400);
        if (turn % 5 == 1) {
            // Busy until an event arrives, whatever the scheduler does: then the park must fail.
            b.waits.fetch_add(1, relaxed);
            const auto event_came = [&] { return (b.conn.state.load(relaxed) & pending) != 0; };
            b.spin_until([&] { return event_came() || b.awaiting_park.load(relaxed); });
        }
        const bool was_pending = (b.conn.state.load(relaxed) & pending) != 0;  // so it cannot park
        b.owners.fetch_sub(1, relaxed);
        if (b.conn.try_park()) {
            if (was_pending) b.parked_over_pending.fetch_add(1, relaxed);
            // As Dispatcher::park does when a drain began: take it straight back, racing
            // the dispatcher's claims.
            if (turn % 3 != 0 || !b.conn.claim_if_parked()) return;
            b.reclaims.fetch_add(1, relaxed);
        } else {
            b.failed_parks.fetch_add(1, relaxed);
        }
        b.take_ownership();
    }
}

void run_worker(Bench& b) {
    std::uint32_t rnd = 7;
    for (;;) {
        int job = 0;
        const auto arrived = [&] { return (job = b.mailbox.exchange(0, std::memory_order_acquire)) != 0; };
        if (!b.spin_until(arrived)) return;
        if (job == 2) return;
        run_turn(b, rnd);
    }
}

// The dispatcher's side: `events` events, each sent once the worker has moved on since the
// last (or the connection is parked), so a busy machine slows both sides alike rather than
// letting one outrun the other. Where in the worker's turn an event lands is left to jitter.
void run_dispatcher(Bench& b, std::uint64_t events) {
    std::uint32_t rnd = 11;
    const auto hand_off = [&] {
        if (b.mailbox.exchange(1, std::memory_order_release) != 0) b.job_on_job.fetch_add(1);
    };
    // As a timer does, but waiting until the connection is parked so that it surely happens.
    const auto take_parked = [&](std::uint64_t sent_so_far) {
        b.awaiting_park.store(true, relaxed);
        const bool took = b.spin_until([&] { return b.conn.claim_if_parked(); });
        b.awaiting_park.store(false, relaxed);
        if (!took) return false;
        b.take_ownership();
        b.timer_claims.fetch_add(1, relaxed);
        if (b.owned.covered < sent_so_far) b.lost.fetch_add(1, relaxed);
        return true;
    };
    std::uint64_t last_looks = 0, last_waits = 0;
    for (std::uint64_t k = 1; k <= events; ++k) {
        const auto moved_on = [&] {
            return b.looks.load(relaxed) != last_looks || b.waits.load(relaxed) != last_waits ||
                   b.conn.state.load(relaxed) == parked;
        };
        if (!b.spin_until(moved_on)) return;
        last_looks = b.looks.load(relaxed);
        last_waits = b.waits.load(relaxed);
        jitter(rnd, 600);
        b.sent.fetch_add(1, std::memory_order_acq_rel);  // the bytes arrive, then epoll says so
        if (b.conn.claim_for_event(EPOLLIN | EPOLLET)) {
            b.take_ownership();
            b.event_claims.fetch_add(1, relaxed);
            if (b.owned.covered < k - 1) b.lost.fetch_add(1, relaxed);  // an earlier one was not looked at
            hand_off();
        } else {
            b.merged.fetch_add(1, relaxed);
        }
        if (k % 1'000 == 0 && take_parked(k)) hand_off();
    }
    if (take_parked(events)) b.owners.fetch_sub(1, relaxed);
}

TEST_SUITE("handoff") {

TEST_CASE("claims between a dispatcher and a worker: one owner at a time, no event lost") {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || !defined(__OPTIMIZE__)
    constexpr std::uint64_t events = 20'000;  // each atomic costs far more there
#else
    constexpr std::uint64_t events = 100'000;
#endif
    const Config cfg;
    const ConnectionRules rules(cfg);
    Bench b(rules);
    b.conn.state.store(parked);  // as after its first turn
    std::thread worker([&] { run_worker(b); });
    run_dispatcher(b, events);
    b.mailbox.store(2);
    worker.join();

    INFO("claims by event ", b.event_claims.load(), ", merged ", b.merged.load(), ", by timer ",
         b.timer_claims.load(), ", failed parks ", b.failed_parks.load(), ", re-claims ", b.reclaims.load());
    REQUIRE_FALSE(b.hung.load());
    CHECK(b.two_owners.load() == 0);
    CHECK(b.lost.load() == 0);
    CHECK(b.parked_over_pending.load() == 0);
    CHECK(b.job_on_job.load() == 0);
    CHECK(b.owners.load() == 0);
    CHECK(b.event_claims.load() + b.merged.load() == events);
    CHECK(b.owned.covered == events);
    // The races were run: events came while it was busy and made parks fail, others found
    // it parked; timers and the worker's own re-claims took it too.
    CHECK(b.merged.load() > 0);
    CHECK(b.failed_parks.load() > 0);
    CHECK(b.event_claims.load() > 0);
    CHECK(b.timer_claims.load() > events / 1'000);
    CHECK(b.reclaims.load() > 0);
}

TEST_CASE("the state word, one step at a time") {
    const Config cfg;
    const ConnectionRules rules(cfg);
    SharedConnection c(rules, 7);
    CHECK_FALSE(c.claim_for_event(EPOLLIN));  // closed: a stale event is ignored
    c.state.store(parked);
    CHECK(c.claim_for_event(EPOLLIN));
    CHECK_FALSE(c.peer_closed.load());
    CHECK_FALSE(c.claim_for_event(EPOLLIN | EPOLLRDHUP));  // busy: noted as pending
    CHECK(c.peer_closed.load());
    CHECK_FALSE(c.claim_if_parked());
    CHECK_FALSE(c.try_park());  // pending: the owner keeps it and looks again
    CHECK(c.state.load() == busy);
    CHECK(c.try_park());
    CHECK(c.state.load() == parked);
    CHECK(c.claim_if_parked());
    CHECK_FALSE(c.claim_if_parked());
    CHECK_FALSE(c.claim_for_event(EPOLLIN));
    c.generation.store(3);
    CHECK(c.token() == ((std::uint64_t{3} << 32) | 7));
}

}  // TEST_SUITE

}  // namespace
}  // namespace okserve
