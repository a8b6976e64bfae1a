// tests/pool/pool_support.hpp - helpers shared by the pool tests: a gate that holds workers,
// a bounded "eventually", and a type that counts its own constructions and destructions.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace okserve::pool::test {

using namespace std::chrono_literals;

// Generous: only a hang ever reaches it, and then it turns the hang into a failure.
inline constexpr auto hang_limit = 20s;

// Holds every job that waits on it until open() is called. wait() gives up at the hang
// limit so a broken test fails instead of hanging; it returns whether the gate opened.
class Gate {
public:
    void open() {
        std::lock_guard lock(mu_);
        open_ = true;
        cv_.notify_all();
    }
    bool wait() {
        std::unique_lock lock(mu_);
        return cv_.wait_for(lock, hang_limit, [this] { return open_; });
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool open_ = false;
};

// Polls `pred` with short sleeps until it holds or the hang limit passes.
template <class Pred>
bool eventually(Pred pred) {
    const auto deadline = std::chrono::steady_clock::now() + hang_limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

// Move-only resource that counts how many instances own something: a stand-in for an fd.
struct Tracked {
    static inline std::atomic<int> alive{0};
    bool owns = true;
    Tracked() { alive.fetch_add(1); }
    Tracked(Tracked&& o) noexcept : owns(o.owns) { o.owns = false; }
    Tracked& operator=(Tracked&&) = delete;
    ~Tracked() {
        if (owns) {
            alive.fetch_sub(1);
        }
    }
};

}  // namespace okserve::pool::test
