// pool/wait_group.cpp - WaitGroup: counting, waking waiters at zero, catching misuse.
#include "pool/wait_group.hpp"

#include <stdexcept>

namespace okserve::pool {

// Both add() and done() notify while still holding the mutex. Notifying after unlocking
// would be a little cheaper, but a waiter could then return, destroy the WaitGroup (it is
// often a local), and leave this thread touching a dead condition variable.
void WaitGroup::add(std::ptrdiff_t n) {
    std::lock_guard lock(mu_);
    if (count_ + n < 0) {
        throw std::logic_error("WaitGroup::add: count would go below zero");
    }
    count_ += n;
    if (count_ == 0 && n != 0) {
        zero_.notify_all();
    }
}

void WaitGroup::done() {
    std::lock_guard lock(mu_);
    if (count_ == 0) {
        throw std::logic_error("WaitGroup::done: called more often than add");
    }
    if (--count_ == 0) {
        zero_.notify_all();
    }
}

void WaitGroup::wait() {
    std::unique_lock lock(mu_);
    zero_.wait(lock, [this] { return count_ == 0; });
}

bool WaitGroup::wait_until(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    return zero_.wait_until(lock, deadline, [this] { return count_ == 0; });
}

std::ptrdiff_t WaitGroup::count() const noexcept {
    std::lock_guard lock(mu_);
    return count_;
}

}  // namespace okserve::pool
