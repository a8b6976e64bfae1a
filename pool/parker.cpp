// pool/parker.cpp - Parker: the futex wait and wake behind park() and unpark().
#include "pool/parker.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ctime>

namespace okserve::pool {

namespace {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t),
              "the futex word is the atomic's own storage");

std::uint32_t* word(std::atomic<std::uint32_t>& a) noexcept {
    return reinterpret_cast<std::uint32_t*>(&a);
}

// Sleeps while *w == expected, until woken, interrupted or the absolute CLOCK_MONOTONIC
// deadline passes (steady_clock is CLOCK_MONOTONIC). Every outcome is handled the same
// way by the caller: look at the word again.
void futex_wait(std::atomic<std::uint32_t>& w, std::uint32_t expected,
                const std::chrono::steady_clock::time_point* deadline) noexcept {
    timespec ts{};
    if (deadline != nullptr) {
        const auto ns =
            std::chrono::duration_cast<std::chrono::nanoseconds>(deadline->time_since_epoch()).count();
        ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
        ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    }
    // FUTEX_WAIT_BITSET takes an absolute deadline, so a spurious return needs no
    // arithmetic before sleeping again.
    syscall(SYS_futex, word(w), FUTEX_WAIT_BITSET_PRIVATE, expected, deadline != nullptr ? &ts : nullptr,
            nullptr, FUTEX_BITSET_MATCH_ANY);
}

void futex_wake_one(std::atomic<std::uint32_t>& w) noexcept {
    syscall(SYS_futex, word(w), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

}  // namespace

bool Parker::park(const std::chrono::steady_clock::time_point* deadline) noexcept {
    std::uint32_t expected = empty;
    if (!state_.compare_exchange_strong(expected, parked, std::memory_order_acquire)) {
        state_.store(empty, std::memory_order_relaxed);  // it was `notified`: take the token
        return true;
    }
    for (;;) {
        futex_wait(state_, parked, deadline);
        if (state_.load(std::memory_order_acquire) == notified) {
            state_.store(empty, std::memory_order_relaxed);
            return true;
        }
        if (deadline != nullptr && std::chrono::steady_clock::now() >= *deadline) {
            expected = parked;
            if (state_.compare_exchange_strong(expected, empty, std::memory_order_acquire)) {
                return false;
            }
            state_.store(empty, std::memory_order_relaxed);  // unparked just as time ran out
            return true;
        }
        // Woken by a signal or spuriously: sleep again.
    }
}

void Parker::unpark() noexcept {
    if (state_.exchange(notified, std::memory_order_release) == parked) {
        futex_wake_one(state_);
    }
}

}  // namespace okserve::pool
