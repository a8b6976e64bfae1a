// pool/wait_group.hpp - WaitGroup: a counter that threads wait on until it falls to zero.
// Owns only its count; knows nothing of jobs, workers or the pool that uses it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>

namespace okserve::pool {

// Like Go's sync.WaitGroup: add(n) before starting n pieces of work, done() as each ends,
// wait() until all have ended. Unlike C++20 std::latch it counts back up after reaching
// zero, so one WaitGroup serves many rounds. A mutex and a condition variable keep it
// obviously correct; it is used once per worker start and exit, never per job.
//
// Misuse is a bug in the caller, so it throws std::logic_error and leaves the count as it
// was: done() with nothing outstanding, or add(n) that would take the count below zero.
// Every member is safe to call from any number of threads.
class WaitGroup {
public:
    WaitGroup() = default;
    WaitGroup(const WaitGroup&) = delete;
    WaitGroup& operator=(const WaitGroup&) = delete;

    void add(std::ptrdiff_t n = 1);
    void done();

    // Returns once the count is zero (at once if it already is).
    void wait();

    // True if the count reached zero before the deadline, false if the deadline passed.
    bool wait_until(std::chrono::steady_clock::time_point deadline);

    template <class Rep, class Period>
    bool wait_for(std::chrono::duration<Rep, Period> timeout) {
        return wait_until(std::chrono::steady_clock::now() + timeout);
    }

    std::ptrdiff_t count() const noexcept;

private:
    mutable std::mutex mu_;
    std::condition_variable zero_;
    std::ptrdiff_t count_ = 0;  // guarded by mu_
};

}  // namespace okserve::pool
