// pool/bounded_queue.hpp - JobRing: a fixed-size FIFO ring of Jobs, allocated once.
// Owns the slots and their order; knows nothing of threads or locks (the Pool guards it).
#pragma once

#include <cstddef>
#include <memory>

#include "pool/job.hpp"

namespace okserve::pool {

// A plain circular buffer: head_ is the oldest job, size_ how many follow it. All slots
// are allocated in the constructor; push and pop only move a 64-byte Job in or out, so
// they never allocate and never throw. Not thread-safe on purpose: the Pool calls it
// under its own mutex, which keeps this class short enough to check by eye.
class JobRing {
public:
    explicit JobRing(std::size_t capacity) : slots_(std::make_unique<Job[]>(capacity)), capacity_(capacity) {}

    std::size_t capacity() const noexcept { return capacity_; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    bool full() const noexcept { return size_ == capacity_; }

    // Precondition: !full(). Moves from `job`.
    void push(Job&& job) noexcept {
        std::size_t tail = head_ + size_;
        if (tail >= capacity_) {
            tail -= capacity_;  // cheaper than %, and capacity_ need not be a power of two
        }
        slots_[tail] = std::move(job);
        ++size_;
    }

    // Precondition: !empty(). The slot is left empty, so it holds no stale resource.
    Job pop() noexcept {
        Job job = std::move(slots_[head_]);
        head_ = head_ + 1 == capacity_ ? 0 : head_ + 1;
        --size_;
        return job;
    }

private:
    std::unique_ptr<Job[]> slots_;
    std::size_t capacity_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

}  // namespace okserve::pool
