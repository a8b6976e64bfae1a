// okserve::EventLoop: one thread's epoll loop that owns its connections for their whole
// life: it accepts them (or is handed them), drives their turns, keeps their timers and
// drains them. Nothing is handed between threads. The reactor mode runs one per worker;
// every mode runs one more, without a listener, to answer 503s off the accepting thread.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "server/connection.hpp"
#include "server/poller.hpp"
#include "server/socket_driver.hpp"
#include "server/stats.hpp"
#include "server/sys/alarm.hpp"
#include "server/sys/fd.hpp"
#include "server/timers.hpp"

namespace okserve {

class EventLoop;

// The options every loop takes (EventLoop here, UringLoop with io_uring).
struct LoopOptions {
    int listen_fd = -1;      // accept from this listener, or -1: sockets are handed in
    bool exclusive = false;  // the listener is shared: EPOLLEXCLUSIVE wakes one loop
    std::size_t max_connections = 1024;
    // Loops that share one --max-connections count their open connections here
    // (nullptr: this loop's own count is the one the limit applies to).
    std::atomic<std::size_t>* shared_open = nullptr;
    bool reject_when_full = false;  // --overflow reject: 503 (else stop accepting)
    EventLoop* rejecter = nullptr;  // where 503s go when this loop is full
};

class EventLoop {
public:
    using Options = LoopOptions;

    EventLoop(const ConnectionRules& rules, Tally& tally, Options options);
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // The loop's thread: serves until drained, or cut off.
    void run();

    // Any thread. Hands a new socket in (counted accepted by the caller); with reject, it
    // is answered 503. False when the loop has no room or is stopping (the socket closes).
    bool adopt(Fd fd, bool reject);
    // Any thread: stop accepting; idle connections close, busy ones finish. run() returns
    // when none is left.
    void begin_drain();
    // Any thread: close whatever is still open (counted timed out) and return from run().
    void cut_off();
    // Any thread: handling events now (not waiting for them).
    bool busy() const noexcept { return busy_.load(std::memory_order_relaxed); }
    std::size_t open_count() const noexcept { return open_.load(std::memory_order_relaxed); }

private:
    // A connection and what the loop keeps for it; the base is its place in a timer list.
    struct Slot : TimerLink {
        explicit Slot(const ConnectionRules& rules) : conn(rules) {}
        Connection conn;
        Fd fd;
        std::uint32_t index = 0;
        std::uint32_t generation = 0;
        std::uint8_t timer_list = 0;
        bool registered = false;
        bool peer_closed = false;
        bool ready = false;  // on the ready list: its turn was cut short
    };

    void accept_batch(std::int64_t now);
    void take_commands(std::int64_t now);
    void on_event(std::uint64_t token, std::uint32_t events, std::int64_t now);
    void start(Fd fd, bool reject, std::int64_t now);
    void after_turn(Slot& s, Turn t, std::int64_t now);
    void set_timer(Slot& s);
    void close_slot(Slot& s);
    void run_ready(std::int64_t now);
    void expire(std::int64_t now);
    void drain_all(std::int64_t now);
    void close_all();
    bool make_room(std::int64_t now);
    void pause_accept(std::int64_t until);
    void resume_accept();
    bool has_room() const noexcept;
    void count_open(int delta) noexcept;
    std::int64_t next_due() const noexcept;
    int wait_timeout();
    Slot* slot_for(std::uint64_t token) noexcept;
    std::uint64_t token(const Slot& s) const noexcept {
        return (static_cast<std::uint64_t>(s.generation) << 32) | s.index;
    }

    static constexpr std::uint64_t listener_token = ~std::uint64_t{0};
    static constexpr std::uint64_t wake_token = ~std::uint64_t{0} - 1;
    static constexpr std::uint64_t alarm_token = ~std::uint64_t{0} - 2;
    static constexpr std::uint32_t drain_flag = 1, cut_flag = 2;

    const ConnectionRules& rules_;
    Tally& tally_;
    Options options_;
    Poller poller_;
    Fd wake_;      // eventfd: another thread has a command for this loop
    Alarm alarm_;  // rings by the earliest deadline, so epoll_wait needs no timeout
    std::vector<std::unique_ptr<Slot>> slots_;
    std::vector<std::uint32_t> free_;
    std::vector<std::uint32_t> ready_;  // slots whose turn was cut short, oldest first
    std::array<TimerList, static_cast<std::size_t>(Connection::Timer::count)> timers_;
    std::atomic<std::size_t> open_{0};
    std::atomic<std::uint32_t> commands_{0};
    std::atomic<bool> busy_{false};  // the loop writes it twice a pass; /metrics reads it
    std::mutex inbox_mutex_;
    std::vector<std::pair<Fd, bool>> inbox_;  // adopted sockets, guarded by inbox_mutex_
    bool accepting_ = false;
    std::int64_t resume_accept_at_ = -1;  // a back-off pause ends then (-1: none)
    bool draining_ = false;
};

}  // namespace okserve
