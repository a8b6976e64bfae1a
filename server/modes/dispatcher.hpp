// okserve dispatcher: the thread shape of --mode pool and --mode queue. One thread owns the
// listener, the epoll set and the timers, and hands each runnable connection as a Job to
// an executor (a worker pool, or one queue with one consumer). It never blocks and never
// does a client's I/O: a full executor leaves work on its own backlog, 503s go to a
// rejecter loop. Knows nothing of HTTP: connections do their turns on the workers.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pool/job.hpp"
#include "pool/pool.hpp"
#include "server/event_loop.hpp"
#include "server/modes/handoff.hpp"
#include "server/modes/mode.hpp"
#include "server/poller.hpp"
#include "server/timers.hpp"

namespace okserve {

// Where the dispatcher sends turns: a pool::Pool or a pool::SerialQueue.
struct Executor {
    // Submits without waking a thread; notify() then wakes one for the whole batch.
    std::function<pool::Submit(pool::Job&&)> try_submit_later;
    std::function<void()> notify;
    std::function<void()> shutdown;  // runs what is queued, joins the threads
    std::function<Gauges()> gauges;
    std::string description;         // for the start-up line
};

class Dispatcher {
public:
    Dispatcher(const ModeSetup& setup, EventLoop& rejecter);
    ~Dispatcher();
    Dispatcher(const Dispatcher&) = delete;
    Dispatcher& operator=(const Dispatcher&) = delete;

    void set_executor(Executor e) { executor_ = std::move(e); }
    // The dispatcher's thread: until drained, or cut off.
    void run();
    // Any thread.
    void begin_drain() { command(drain_flag); }
    void cut_off() { command(cut_flag); }
    // After a cut-off, once run() has returned and the executor has stopped.
    void close_remaining();
    const Executor& executor() const noexcept { return executor_; }
    // A worker with nothing queued: takes connections that are ready straight from the
    // epoll set and does their turns itself. True if it did any.
    bool help() noexcept;

private:
    using Wake = SharedConnection::Wake;

    // Connections by slot. Slots are reused (with a new generation), never freed while the
    // server runs, so a stale epoll event can always be checked against its generation.
    SharedConnection* acquire();
    void release(SharedConnection& c) noexcept;
    SharedConnection* at(std::uint32_t slot) noexcept;

    // dispatcher thread
    void on_listener(std::int64_t now);
    void on_connection(std::uint64_t token, std::uint32_t events);
    void on_wake(std::int64_t now);
    void hand_off(SharedConnection& c, Wake why);
    bool submit(SharedConnection& c, Wake why);
    void flush_backlog();
    void expire(std::int64_t now);
    void schedule(SharedConnection& c, std::int64_t now);
    bool evict_oldest_idle();
    void pause_accept(std::int64_t until);
    void resume_accept();
    void start_drain();
    int wait_timeout(std::int64_t now) const;
    void command(std::uint32_t flag);

    // worker threads
    void turn(SharedConnection& c, Wake why) noexcept;
    bool park(SharedConnection& c, std::int64_t now) noexcept;
    void close(SharedConnection& c, Tally& t) noexcept;
    void give_back(SharedConnection& c) noexcept;
    Tally& worker_tally();

    static constexpr std::uint64_t listener_token = ~std::uint64_t{0};
    static constexpr std::uint64_t wake_token = ~std::uint64_t{0} - 1;
    static constexpr std::uint32_t drain_flag = 1, cut_flag = 2;

    const ModeSetup setup_;
    EventLoop& rejecter_;
    Executor executor_;
    Poller poller_;
    Fd wake_;
    Tally& tally_;  // the dispatcher's own
    std::int64_t recheck_ms_;

    std::vector<std::unique_ptr<SharedConnection>> slots_;
    // Written by the dispatcher alone; read by workers that help (at()), so atomic.
    std::atomic<std::size_t> created_{0};
    std::mutex free_mutex_;
    std::vector<std::uint32_t> free_;  // guarded by free_mutex_
    std::atomic<std::size_t> open_{0};

    DeadlineHeap timers_;
    std::deque<std::pair<SharedConnection*, Wake>> backlog_;  // turns no executor place took yet
    bool accepting_ = false;
    std::int64_t resume_accept_at_ = -1;
    std::atomic<std::uint32_t> commands_{0};
    std::atomic<bool> draining_{false};
    bool submitted_ = false;  // this loop iteration handed something over: notify once

    std::mutex yield_mutex_;
    std::vector<SharedConnection*> yielded_;  // turns cut short by their budget
};

}  // namespace okserve
