// okserve::Alarm, the timerfd a loop keeps set by its earliest deadline so that its waits
// need no timeout: when setting it takes a system call, and that it rings by the time.
#include <doctest/doctest.h>

#include <poll.h>

#include "server/poller.hpp"
#include "server/sys/alarm.hpp"

using namespace okserve;

namespace {

bool rings_within(const Alarm& a, int ms) {
    pollfd p{a.fd(), POLLIN, 0};
    return ::poll(&p, 1, ms) == 1 && (p.revents & POLLIN) != 0;
}

}  // namespace

TEST_CASE("alarm: set only when the earliest deadline moves earlier") {
    Alarm a;
    CHECK(a.set_for() == -1);
    CHECK_FALSE(a.ring_by(-1));  // nothing due: nothing to set
    CHECK(a.set_for() == -1);

    const std::int64_t now = now_ms();
    CHECK(a.ring_by(now + 60'000));
    CHECK(a.set_for() == now + 60'000);
    CHECK_FALSE(a.ring_by(now + 70'000));  // later: it rings early and is set again then
    CHECK_FALSE(a.ring_by(now + 60'000));
    CHECK_FALSE(a.ring_by(-1));
    CHECK(a.set_for() == now + 60'000);
    CHECK(a.ring_by(now + 30'000));  // earlier: set again
    CHECK(a.set_for() == now + 30'000);
    CHECK_FALSE(rings_within(a, 0));
}

TEST_CASE("alarm: rings by its deadline; after rang() it is set again by the next ring_by") {
    Alarm a;
    const std::int64_t now = now_ms();
    a.ring_by(now + 60'000);
    CHECK_FALSE(rings_within(a, 0));
    CHECK(a.ring_by(now + 20));
    CHECK(rings_within(a, 20'000));  // a bound only so that a hang fails; it rings in ~20 ms
    a.rang();
    CHECK(a.set_for() == -1);
    CHECK_FALSE(rings_within(a, 0));  // read: quiet until set again
    CHECK(a.ring_by(now + 60'000));
    CHECK(a.set_for() == now + 60'000);
}

TEST_CASE("alarm: a deadline already past (0 included) rings at once") {
    for (const std::int64_t due : {std::int64_t{0}, now_ms() - 1000}) {
        Alarm a;
        CHECK(a.ring_by(due));
        CHECK(rings_within(a, 20'000));
        a.forget();  // as after a read through io_uring
        CHECK(a.set_for() == -1);
    }
}
