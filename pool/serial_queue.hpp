// pool/serial_queue.hpp - SerialQueue: one bounded FIFO under one mutex and one consumer
// thread that runs its Jobs in order. The simplest shape there is, kept beside Pool so the
// two can be compared. Knows nothing of sockets or HTTP.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <stop_token>
#include <thread>

#include "pool/bounded_queue.hpp"
#include "pool/job.hpp"
#include "pool/pool.hpp"

namespace okserve::pool {

class SerialQueue {
public:
    // Starts the consumer. `capacity` jobs may wait (the running one not counted).
    explicit SerialQueue(std::size_t capacity) : ring_(capacity == 0 ? 1 : capacity) {
        consumer_ = std::thread([this] { consume(); });
    }
    ~SerialQueue() { shutdown(); }
    SerialQueue(const SerialQueue&) = delete;
    SerialQueue& operator=(const SerialQueue&) = delete;

    // Never waits: `full` when no place is free, `closed` after shutdown began. With
    // Notify::later the consumer is woken by the caller's notify() after its batch.
    Submit try_submit(Job&& job, Notify notify = Notify::now) noexcept {
        {
            std::lock_guard lock(mu_);
            if (closed_) return Submit::closed;
            if (ring_.full()) return Submit::full;
            ring_.push(std::move(job));
        }
        if (notify == Notify::now) ready_.notify_one();
        return Submit::accepted;
    }
    void notify() noexcept { ready_.notify_one(); }

    // Runs what is queued, then stops the consumer. Safe to call twice.
    void shutdown() {
        {
            std::lock_guard lock(mu_);
            closed_ = true;
        }
        ready_.notify_one();
        if (consumer_.joinable()) consumer_.join();
    }

    std::size_t capacity() const noexcept { return ring_.capacity(); }
    // Jobs waiting now (the running one not counted), and whether one runs.
    std::size_t size() const {
        std::lock_guard lock(mu_);
        return ring_.size();
    }
    bool busy() const noexcept { return running_.load(std::memory_order_relaxed); }

private:
    void consume() {
        std::stop_source never;  // jobs here are never cancelled
        for (;;) {
            Job job;
            {
                std::unique_lock lock(mu_);
                ready_.wait(lock, [this] { return closed_ || !ring_.empty(); });
                if (ring_.empty()) return;  // closed and drained
                job = ring_.pop();
            }
            running_.store(true, std::memory_order_relaxed);
            job(never.get_token());  // connection turns are noexcept: nothing to catch
            running_.store(false, std::memory_order_relaxed);
        }
    }

    mutable std::mutex mu_;
    std::condition_variable ready_;
    std::atomic<bool> running_{false};
    JobRing ring_;  // guarded by mu_
    bool closed_ = false;
    std::thread consumer_;
};

}  // namespace okserve::pool
