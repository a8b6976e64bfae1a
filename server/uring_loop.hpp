// okserve::UringLoop: one thread's io_uring that owns its connections for their whole life,
// like EventLoop, but the ring does the I/O: the loop only prepares requests and reacts to
// completions, and one io_uring_enter per pass submits them all and waits for the next.
// Built only with liburing (OKSERVE_HAVE_URING).
//
// io_uring techniques shown here, and the kernels they need:
//   - multishot accept: one request keeps delivering new connections (5.19);
//   - receive with a provided buffer ring: the kernel picks a buffer when data arrives,
//     so an idle connection holds none (5.19), and each buffer goes back to the ring as
//     soon as the connection has taken its bytes;
//   - multishot receive (6.0): once a connection has had an answer, one request keeps
//     delivering its input, so a keep-alive connection is not re-armed per request. It is
//     cancelled when the connection should not read (a backlog of answers the client does
//     not take: at most hold_max bytes are accepted meanwhile) or has had its turn's budget
//     in one pass, and armed again when the connection asks to read. A kernel that refuses
//     it (EINVAL) gets single-shot receives from then on;
//   - batched submission: every send and receive prepared in a pass goes in one system
//     call, together with the wait for completions (io_uring_submit_and_wait_timeout).
//
// For tests: OKSERVE_URING_RECV=single forces single-shot receives; OKSERVE_URING_BUFFERS=N
// (a power of two, 1 to 4096) sizes the provided buffer ring, so a tiny one runs dry.
#pragma once

#if OKSERVE_HAVE_URING

#include <liburing.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <sys/socket.h>
#include <sys/uio.h>

#include "server/connection.hpp"
#include "server/event_loop.hpp"
#include "server/stats.hpp"
#include "server/sys/alarm.hpp"
#include "server/sys/fd.hpp"
#include "server/timers.hpp"

namespace okserve {

class UringLoop {
public:
    using Options = LoopOptions;

    // Whether io_uring can run here with what this loop needs (a ring, the opcodes, a
    // provided buffer ring). On false, `why` says what failed, in a few words.
    static bool available(std::string& why);

    UringLoop(const ConnectionRules& rules, Tally& tally, Options options);  // throws SysError
    ~UringLoop();
    UringLoop(const UringLoop&) = delete;
    UringLoop& operator=(const UringLoop&) = delete;

    void run();          // the loop's thread: until drained, or cut off
    void begin_drain();  // any thread
    void cut_off();      // any thread
    // Any thread: handling events now (not waiting for them).
    bool busy() const noexcept { return busy_.load(std::memory_order_relaxed); }

private:
    struct Slot : TimerLink {
        explicit Slot(const ConnectionRules& rules) : conn(rules) {}
        Connection conn;
        Fd fd;
        std::uint32_t index = 0;
        std::uint32_t generation = 0;
        std::uint8_t timer_list = 0;
        std::uint8_t in_flight = 0;  // requests the kernel still holds for this connection
        bool receiving = false;
        bool multishot = false;  // the receive armed is multishot
        bool stopping = false;   // ... and is being cancelled
        bool sending = false;
        bool closing = false;  // counted and done; waits for in_flight to reach 0
        std::uint32_t recv_seq = 0;    // tells one armed receive from the next (cancels)
        std::uint32_t held = 0;        // input taken while the connection was not reading
        std::uint32_t pass = 0;        // the pass pass_bytes counts in
        std::uint32_t pass_bytes = 0;  // input taken in that pass (the turn budget)
    };
    // The message header and iovecs of a sendmsg: an answer in several pieces (a large body
    // sent from where it lies). The kernel has copied them once the request is submitted
    // (IORING_FEAT_SUBMIT_STABLE), so they live here until the next submission instead of in
    // every connection's slot for its whole life (120 bytes an idle connection does not pay).
    struct Gather {
        msghdr msg;
        iovec iov[4];
    };
    // What a completion is for. `done` marks requests whose completion needs nothing (a
    // cancel, a close).
    enum class Op : std::uint8_t { accept = 1, recv, send, wake, alarm, done };

    // completions
    void on_completion(const io_uring_cqe& cqe, std::int64_t now);
    void on_accept(int res, bool more, std::int64_t now);
    void on_recv(Slot& s, int res, std::uint32_t flags, std::int64_t now);
    void on_send(Slot& s, int res, std::int64_t now);
    void on_wake(std::int64_t now);

    // requests
    io_uring_sqe* sqe();
    void unheard(io_uring_sqe* e) noexcept;
    void arm_accept();
    void cancel_accept();
    void arm_wake();
    void arm_alarm();
    void arm_recv(Slot& s);
    void stop_recv(Slot& s);
    void arm_send(Slot& s);
    void recycle(std::uint16_t buffer);

    // connections
    void start(Fd fd, std::int64_t now);
    void step(Slot& s, Connection::Action a, std::int64_t now);
    void finish(Slot& s);
    void release(Slot& s);
    void set_timer(Slot& s);
    void expire(std::int64_t now);
    bool has_room() const noexcept;
    bool make_room(std::int64_t now);
    void count_open(int delta) noexcept;
    void drain_all(std::int64_t now);
    void close_all();
    std::int64_t next_due() const noexcept;

    static std::uint64_t data(Op op, std::uint32_t index, std::uint32_t generation) noexcept {
        return (static_cast<std::uint64_t>(op) << 56) | (static_cast<std::uint64_t>(generation & 0xffffff) << 32) | index;
    }

    static constexpr std::uint32_t drain_flag = 1, cut_flag = 2;
    static constexpr unsigned default_buffer_count = 256;  // a power of two
    static constexpr unsigned buffer_size = 16 * 1024;
    // Input a connection that is writing (not reading) may take from a multishot receive
    // before it is cancelled; what arrives after that stays in the socket (TCP pushes back).
    static constexpr std::uint32_t hold_max = 64 * 1024;

    const ConnectionRules& rules_;
    Tally& tally_;
    Options options_;
    io_uring ring_{};
    bool ring_ready_ = false;
    bool disabled_ = false;  // made disabled: run() enables it on the loop's thread
    io_uring_buf_ring* buffers_ = nullptr;
    unsigned buffer_count_ = default_buffer_count;
    std::unique_ptr<char[]> buffer_memory_;
    bool multishot_ = true;  // multishot receives: off when forced, or the kernel refuses
    std::uint32_t pass_ = 0;
    Fd wake_;
    std::uint64_t wake_value_ = 0;
    Alarm alarm_;  // rings by the earliest deadline, so the wait needs no timeout
    std::uint64_t alarm_value_ = 0;
    std::vector<std::unique_ptr<Slot>> slots_;
    std::deque<Gather> gathers_;  // this pass's sendmsg headers (a deque: addresses stay put)
    std::vector<std::uint32_t> free_;
    std::vector<std::uint32_t> starved_;  // receives that found no buffer: armed again later
    std::vector<std::uint32_t> rearm_;    // starved_ taken for the pass (kept: no allocation)
    std::vector<Fd> waiting_;  // accepted while full (--overflow block): started as room frees
    std::array<TimerList, static_cast<std::size_t>(Connection::Timer::count)> timers_;
    std::size_t open_ = 0;
    std::size_t closing_ = 0;  // slots waiting for their last completions
    std::atomic<std::uint32_t> commands_{0};
    std::atomic<bool> busy_{false};  // the loop writes it twice a pass; /metrics reads it
    bool accepting_ = false;       // a multishot accept is armed
    bool accept_paused_ = false;   // full, or backing off
    std::int64_t resume_accept_at_ = -1;
    bool draining_ = false;
};

}  // namespace okserve

#endif  // OKSERVE_HAVE_URING
