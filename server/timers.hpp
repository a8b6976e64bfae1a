// okserve timers: two ways to find the connections whose deadline has passed. Each mode
// picks the one that fits who moves deadlines. Knows nothing of sockets or HTTP.
#pragma once

#include <cstdint>
#include <functional>
#include <queue>
#include <vector>

namespace okserve {

// Deadlines keyed by (slot, generation), earliest first: O(log n) per push and pop.
// Entries are lazy: on expiry the owner checks whether the entry still matters. For a
// thread that keeps timers for connections other threads move on (the dispatcher).
class DeadlineHeap {
public:
    struct Entry {
        std::int64_t due_ms;
        std::uint32_t slot;
        std::uint32_t generation;
        bool operator>(const Entry& o) const noexcept { return due_ms > o.due_ms; }
    };
    void push(Entry e) { heap_.push(e); }
    bool empty() const noexcept { return heap_.empty(); }
    const Entry& top() const noexcept { return heap_.top(); }
    void pop() noexcept { heap_.pop(); }
    std::size_t size() const noexcept { return heap_.size(); }

private:
    std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_;
};

// An intrusive FIFO of timers that all share one duration (lwan's timeout queue): a timer
// set at `now + d` goes to the tail, so the list stays sorted and every operation is O(1).
// For a thread that owns its connections and all their deadlines (a reactor loop).
struct TimerLink {
    TimerLink* prev = nullptr;
    TimerLink* next = nullptr;
    std::int64_t due_ms = 0;
    bool linked() const noexcept { return prev != nullptr; }
};

class TimerList {
public:
    TimerList() noexcept { head_.prev = head_.next = &head_; }
    TimerList(const TimerList&) = delete;
    TimerList& operator=(const TimerList&) = delete;

    // Appends (or moves) `t` to the tail. due_ms must not be earlier than the tail's.
    void push_back(TimerLink& t, std::int64_t due_ms) noexcept {
        unlink(t);
        t.due_ms = due_ms;
        t.prev = head_.prev;
        t.next = &head_;
        head_.prev->next = &t;
        head_.prev = &t;
    }
    static void unlink(TimerLink& t) noexcept {
        if (!t.linked()) return;
        t.prev->next = t.next;
        t.next->prev = t.prev;
        t.prev = t.next = nullptr;
    }
    bool empty() const noexcept { return head_.next == &head_; }
    TimerLink* front() noexcept { return empty() ? nullptr : head_.next; }
    // The earliest deadline, or -1 when empty.
    std::int64_t next_due() const noexcept { return empty() ? -1 : head_.next->due_ms; }

private:
    TimerLink head_;  // sentinel: the list is a ring through it
};

}  // namespace okserve
