// pool/parker.hpp - Parker: one thread sleeps on it until another thread wakes it.
// Owns one 32-bit word and the futex calls on it; knows nothing of jobs or of who sleeps.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace okserve::pool {

// Each worker owns a Parker. An idle worker parks; whoever has work for it unparks it.
// Unlike a condition variable there is no mutex to take again on waking, the waker picks
// exactly which thread wakes, and a wake-up can't be lost: an unpark() that comes before
// park() leaves a token, and park() then returns at once.
//
// The word is one of three states:
//   empty     nobody asleep, no token
//   notified  a token: the next park() takes it and returns at once
//   parked    the owner is asleep (or about to be) in futex(FUTEX_WAIT) on the word
// park() moves empty -> parked and sleeps while the word still says parked. unpark()
// writes notified and makes the futex(FUTEX_WAKE) system call only if it replaced
// parked: an unpark of a thread that is awake costs one atomic exchange.
//
// One thread parks on a given Parker (its owner); any thread may unpark it.
class Parker {
public:
    Parker() = default;
    Parker(const Parker&) = delete;
    Parker& operator=(const Parker&) = delete;

    // Sleeps until unpark() (returns true) or until `deadline` (returns false); with no
    // deadline, only unpark() ends it. Takes the token if one is waiting.
    bool park(const std::chrono::steady_clock::time_point* deadline) noexcept;

    void unpark() noexcept;

private:
    static constexpr std::uint32_t empty = 0;
    static constexpr std::uint32_t notified = 1;
    static constexpr std::uint32_t parked = 2;

    std::atomic<std::uint32_t> state_{empty};
};

}  // namespace okserve::pool
