// pool/ticket_ring.hpp - TicketRing: a bounded ring of Jobs that many threads push to and
// pop from at once without a lock, with a "closed" flag that stops pushes atomically.
// Owns its cells and their order; knows nothing of capacity rules, sleeping or statistics.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>

#include "pool/job.hpp"

namespace okserve::pool {

// The design is Dmitry Vyukov's bounded MPMC queue. Every cell carries a sequence number
// that says whose turn it is:
//
//   seq == t       the cell is free for the push holding ticket t
//   seq == t + 1   the job of ticket t is in the cell, ready for the pop holding ticket t
//   seq == t + N   that pop has moved the job out: free for the push holding ticket t + N
//
// where N (a power of two) is the number of cells and ticket t uses cell t mod N. A push
// claims the next ticket from tail_ with a compare-and-swap, writes the job, then
// publishes it by storing seq = t + 1. A pop claims a ticket from head_ the same way, but
// only once it has seen seq == t + 1, so it never waits for a push. That store and load
// (release and acquire at least; seq_cst here, for the Pool's sleep handshake) hand the
// Job's bytes from one thread to the other; the tickets only decide who goes where.
//
// Two things differ from the textbook queue:
// - "Full" is the caller's limit, not the ring's: push takes a ticket only below the
//   `limit` it is given. The Pool passes (jobs finished + capacity), which is its capacity
//   rule, so at most `room` <= N jobs are ever inside, and the cell a push needs was
//   always popped by an earlier pop. At worst that pop is still moving the job out, a few
//   instructions, and the push waits for it without sleeping, yielding the CPU if the
//   wait lasts.
// - The top bit of tail_ is a close flag. close() sets it with one atomic OR, so a push
//   either got its ticket before the close (and will be popped) or sees the flag and
//   fails. After a close the number of tickets is final, which makes "every job that was
//   pushed has been popped" (drained()) an exact test.
class TicketRing {
public:
    explicit TicketRing(std::size_t room)
        : mask_(cells_for(room) - 1), cells_(std::make_unique<Cell[]>(mask_ + 1)) {
        for (std::uint64_t i = 0; i <= mask_; ++i) {
            cells_[i].seq.store(i, std::memory_order_relaxed);
        }
    }
    TicketRing(const TicketRing&) = delete;
    TicketRing& operator=(const TicketRing&) = delete;

    enum class Push : std::uint8_t { pushed, full, closed };

    // Moves `job` in, stores its ticket and returns `pushed`, unless the ring is closed or
    // the next ticket is `limit` or more (then `job` is left alone). The caller's limit must
    // never let more than `room` jobs be inside at once (see above); the Pool derives it
    // from how many jobs have finished.
    Push push(Job& job, std::uint64_t limit, std::uint64_t& ticket) noexcept {
        std::uint64_t t = tail_.load(std::memory_order_relaxed);
        for (unsigned waited = 0;;) {
            if ((t & closed_bit) != 0) {
                return Push::closed;
            }
            if (t >= limit) {
                return Push::full;
            }
            Cell& cell = cells_[t & mask_];
            const std::uint64_t seq = cell.seq.load(std::memory_order_acquire);
            if (seq == t) {
                if (tail_.compare_exchange_weak(t, t + 1, std::memory_order_relaxed)) {
                    cell.job = std::move(job);
                    // seq_cst, not just release: the Pool's sleep handshake needs this store
                    // and its later read of the sleepers' count to be ordered (see Pool).
                    cell.seq.store(t + 1, std::memory_order_seq_cst);
                    ticket = t;
                    return Push::pushed;
                }
                // t now holds the current tail (another push won, or the ring closed).
            } else if (seq < t) {
                pause(++waited);  // the pop of ticket t - N is still moving its job out
                t = tail_.load(std::memory_order_relaxed);
            } else {
                t = tail_.load(std::memory_order_relaxed);  // another push took ticket t
            }
        }
    }

    // Takes the oldest job if it is ready. False if the ring is empty, or if the next
    // ticket's push has not published yet (that push then wakes a sleeper itself).
    bool try_pop(Job& out) noexcept {
        std::uint64_t h = head_.load(std::memory_order_relaxed);
        for (;;) {
            Cell& cell = cells_[h & mask_];
            const std::uint64_t seq = cell.seq.load(std::memory_order_seq_cst);  // acquire + handshake
            if (seq == h + 1) {
                if (head_.compare_exchange_weak(h, h + 1, std::memory_order_relaxed)) {
                    out = std::move(cell.job);
                    cell.seq.store(h + mask_ + 1, std::memory_order_release);
                    return true;
                }
            } else if (seq < h + 1) {
                return false;
            } else {
                h = head_.load(std::memory_order_relaxed);  // another pop took ticket h
            }
        }
    }

    void close() noexcept { tail_.fetch_or(closed_bit, std::memory_order_seq_cst); }
    bool closed() const noexcept { return (tail_.load(std::memory_order_seq_cst) & closed_bit) != 0; }

    // Closed, and every ticket handed out has been popped (each job is with a worker).
    bool drained() const noexcept {
        const std::uint64_t t = tail_.load(std::memory_order_seq_cst);
        return (t & closed_bit) != 0 && head_.load(std::memory_order_seq_cst) == (t & ~closed_bit);
    }

    // Tickets handed out minus tickets popped: exact when nobody is pushing or popping.
    // Reads the tail first, so a thread that sleeps between the two loads under-counts
    // rather than counting pops that happened meanwhile as jobs inside.
    std::size_t size() const noexcept {
        const std::uint64_t t = tail_.load(std::memory_order_seq_cst) & ~closed_bit;
        const std::uint64_t h = head_.load(std::memory_order_seq_cst);
        return t > h ? static_cast<std::size_t>(t - h) : 0;
    }
    bool empty() const noexcept { return size() == 0; }

    // Tickets handed out: the normal lane's count of accepted jobs.
    std::uint64_t pushed() const noexcept { return tail_.load(std::memory_order_seq_cst) & ~closed_bit; }

    std::size_t cells() const noexcept { return static_cast<std::size_t>(mask_ + 1); }

private:
    static constexpr std::uint64_t closed_bit = std::uint64_t{1} << 63;

    // 64 bytes of Job and the sequence number, on a cache-line boundary so that two
    // threads working on neighbouring cells never write to the same line.
    struct alignas(64) Cell {
        std::atomic<std::uint64_t> seq{0};
        Job job;
    };

    static std::uint64_t cells_for(std::size_t room) noexcept {
        std::uint64_t n = 1;
        while (n < room) {
            n <<= 1;
        }
        return n;
    }

    static void pause(unsigned waited) noexcept {
        if (waited < 64) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        } else {
            std::this_thread::yield();  // the thread we wait for may have lost its CPU
        }
    }

    const std::uint64_t mask_;
    const std::unique_ptr<Cell[]> cells_;
    alignas(64) std::atomic<std::uint64_t> tail_{0};  // next push ticket, and the close flag
    alignas(64) std::atomic<std::uint64_t> head_{0};  // next pop ticket
};

}  // namespace okserve::pool
