// okserve --mode pool: the design's shape. One dispatcher thread owns the epoll set, the
// listener and the timers, and hands every runnable connection to pool/ as a Job.
// Knows nothing of HTTP: connections do their own reading, answering and closing.
#pragma once

#include <cstdint>
#include <string>

#include "pool/pool.hpp"
#include "server/connection.hpp"
#include "server/sys/net.hpp"

namespace okserve {

// Puts the calling thread under SCHED_BATCH (true) or SCHED_OTHER (false). Returns 0 or
// an errno value.
int set_thread_batch(bool batch) noexcept;

class PoolMode {
public:
    // signal_fd: a signalfd for SIGINT/SIGTERM (blocked in every thread).
    PoolMode(ServerContext& ctx, Listener& listener, pool::Pool& pool, Fd signal_fd);
    // Runs until a signal has drained the server (or the drain timeout passed).
    // Returns the number of connections still open at the end.
    std::size_t run();

private:
    void on_listener(std::int64_t now);
    void on_connection(std::uint64_t token, std::uint32_t events);
    void on_signal();
    void expire(std::int64_t now);
    void pause_accept(std::int64_t now, std::int64_t for_ms, int err);
    void resume_accept_if_due(std::int64_t now);
    void hand_off(Connection* c, Connection::Wake why);
    void begin_drain();
    int wait_timeout(std::int64_t now) const;
    void schedule(Connection* c, std::int64_t now);

    static constexpr std::uint64_t listener_token = ~std::uint64_t{0};
    static constexpr std::uint64_t signal_token = ~std::uint64_t{0} - 1;

    ServerContext& ctx_;
    Listener& listener_;
    pool::Pool& pool_;
    Fd signal_fd_;
    DeadlineHeap timers_;
    bool accepting_ = true;
    std::int64_t resume_accept_at_ = 0;
    std::int64_t last_accept_log_ = 0;
    std::uint64_t accept_errors_since_log_ = 0;
    bool draining_ = false;
    std::int64_t drain_deadline_ = 0;
};

}  // namespace okserve
