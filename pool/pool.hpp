// pool/pool.hpp - Pool: worker threads fed by a bounded queue, with backpressure and shutdown.
// Owns its threads, its two rings of Jobs and their accounting; knows nothing of sockets or HTTP.
#pragma once

// Design, in brief (docs/pool.md has the long version):
// - Two JobRings allocated once: the normal lane and a small priority lane that workers
//   always empty first. One mutex guards both rings and every counter, so each state
//   change is one short critical section that a reader can check by eye.
// - Capacity rule: a normal job holds its place from submit until it *finishes*, so
//   queued + running <= max_workers + queue_size. With every worker busy, exactly
//   queue_size more jobs wait. The priority lane holds priority_size more, apart.
// - Sleeping: idle workers wait on a condition variable, blocked submitters on another.
//   Nobody spins. A submitter wakes a worker only if one sleeps and no wake-up is already
//   under way (wakes_pending_ == 0); a worker that takes a job and leaves work behind
//   passes the wake-up on. So a burst of submits costs one futex call, not one per job,
//   and a submit with no sleeper costs no system call at all.
// - No lost wake-ups: a worker decides to sleep under the mutex, after seeing both rings
//   empty, and a submitter pushes under the same mutex, so the push either comes first
//   (the worker sees it) or sees the worker counted in sleeping_ (and notifies).
//   Sleepers still look again once a second, in case the C library loses a notify.
// - Shutdown: a WaitGroup counts live workers. Drain = close, let workers empty the
//   rings and exit, wait on the group (optionally with a deadline). Cancel = close, drop
//   what is queued, request_stop() on the token every job receives, wait.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <future>
#include <mutex>
#include <stop_token>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "pool/bounded_queue.hpp"
#include "pool/job.hpp"
#include "pool/latch.hpp"
#include "pool/stats.hpp"

namespace okserve::pool {

// Every submission says whether the job was taken. On anything but `accepted` the caller
// still owns its Job (and the fd inside it) and decides what to do (answer 503, retry).
enum class Submit : std::uint8_t { accepted, full, closed, timed_out };

const char* to_string(Submit s) noexcept;

struct DrainResult {
    std::size_t unfinished = 0;  // queued + running jobs not finished by the deadline
};

class Pool {
public:
    using Clock = std::chrono::steady_clock;

    // Starts the workers. Throws std::invalid_argument for max_workers == 0, min_workers >
    // max_workers, or a non-positive idle_timeout with dynamic sizing; std::system_error
    // if a thread cannot start.
    explicit Pool(Options options);
    ~Pool();  // drains (like shutdown()) if still running; joins every thread
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;

    std::size_t capacity() const noexcept { return capacity_; }  // max_workers + queue_size

    // All submit calls are safe from any number of threads and move from `job` only when
    // they return `accepted`. A pool that has begun shutdown answers `closed`.
    Submit submit(Job&& job);                                    // waits while full: this is the backpressure
    Submit try_submit(Job&& job) noexcept;                       // `full` at once instead of waiting
    Submit submit_until(Job&& job, Clock::time_point deadline);  // `timed_out` after deadline
    template <class Rep, class Period>
    Submit submit_for(Job&& job, std::chrono::duration<Rep, Period> timeout) {
        return submit_until(std::move(job), Clock::now() + timeout);
    }
    Submit try_submit_priority(Job&& job) noexcept;  // the priority lane; never waits

    // For callers who want the outcome: the future holds f's result or its exception. This
    // path allocates (promise, shared state); plain jobs don't pay for it. Waits like
    // submit(). If the pool is closed, or cancel() drops the job, the future reports
    // std::future_error with broken_promise.
    template <class F>
    auto submit_task(F&& f);

    // Shutdown calls wait for the workers, so calling one from inside a job of the same
    // pool throws std::logic_error instead of deadlocking. Safe from several threads at once.
    DrainResult shutdown();  // graceful: stop taking jobs, run all queued ones, join
    // Graceful with a deadline. If jobs are still unfinished then, it reports how many and
    // returns; workers go on draining. A later shutdown(), cancel() or ~Pool() finishes it.
    DrainResult shutdown_until(Clock::time_point deadline);
    // Stop taking jobs, drop queued ones (destroying them unrun), request stop on the
    // token running jobs hold, wait for them to return. Returns how many were dropped.
    std::size_t cancel();

    Stats stats() const;  // a snapshot; takes the mutex briefly, never stops a worker

private:
    enum class Lane : std::uint8_t { normal, priority };
    struct Slot {  // one possible worker thread; dynamic sizing reuses retired slots
        std::thread thread;
        bool live = false;
    };

    Submit submit_waiting(Job& job, const Clock::time_point* deadline);
    Submit admit(std::unique_lock<std::mutex>& lock, Job& job, Lane lane) noexcept;
    bool normal_full() const noexcept { return normal_.size() + normal_running_ >= capacity_; }
    bool dynamic() const noexcept { return min_workers_ != 0; }
    void start_worker_locked(std::size_t slot);
    void grow_if_starved_locked() noexcept;

    void worker_loop(std::size_t slot);
    bool next_job_locked(std::unique_lock<std::mutex>& lock, Job& job, Lane& lane);
    bool sleep_locked(std::unique_lock<std::mutex>& lock, Clock::time_point idle_since);
    void account_locked(std::size_t slot, Lane lane, bool ok) noexcept;

    void refuse_from_own_worker(const char* what) const;
    void close() noexcept;
    void join_all();

    const std::size_t max_workers_;
    const std::size_t min_workers_;
    const std::size_t capacity_;
    const std::chrono::milliseconds idle_timeout_;
    const std::function<void()> on_worker_start_;

    mutable std::mutex mu_;
    std::condition_variable work_cv_;  // idle workers sleep here
    std::condition_variable room_cv_;  // blocked submitters sleep here
    // Everything below up to join_mu_ is guarded by mu_.
    JobRing normal_;
    JobRing priority_;
    std::size_t normal_running_ = 0;  // normal jobs taken by a worker, not yet finished
    std::size_t busy_ = 0;            // workers running a job (either lane)
    std::size_t live_workers_ = 0;
    std::size_t sleeping_ = 0;       // workers inside work_cv_.wait
    std::size_t wakes_pending_ = 0;  // notifies sent to work_cv_ and not yet consumed
    std::size_t blocked_submitters_ = 0;
    std::size_t room_wakes_pending_ = 0;  // notifies sent to room_cv_ and not yet consumed
    bool closed_ = false;
    bool cancelled_ = false;
    std::vector<Slot> slots_;  // max_workers_ entries, never resized (threads keep an index)
    Stats stats_;              // counters; workers/queued/in_flight are filled in by stats()

    std::mutex join_mu_;  // serialises joining threads when several threads shut down at once
    std::stop_source stop_;
    WaitGroup live_;  // one count per running worker thread
};

namespace detail {
template <class F>
using task_result_t =
    typename std::conditional_t<std::is_invocable_v<F&, std::stop_token>,
                                std::invoke_result<F&, std::stop_token>, std::invoke_result<F&>>::type;

template <class F>
decltype(auto) call_task(F& f, const std::stop_token& stop) {
    if constexpr (std::is_invocable_v<F&, std::stop_token>) {
        return f(stop);
    } else {
        return f();
    }
}
}  // namespace detail

template <class F>
auto Pool::submit_task(F&& f) {
    using Fn = std::decay_t<F>;
    using R = detail::task_result_t<Fn>;
    std::promise<R> promise;
    std::future<R> future = promise.get_future();
    Job job(
        [fn = Fn(std::forward<F>(f)), p = std::move(promise)](const std::stop_token& stop) mutable -> bool {
            try {
                if constexpr (std::is_void_v<R>) {
                    detail::call_task(fn, stop);
                    p.set_value();
                } else {
                    p.set_value(detail::call_task(fn, stop));
                }
                return true;
            } catch (...) {
                p.set_exception(std::current_exception());
                return false;  // counted as failed; the submitter sees the exception itself
            }
        });
    submit(std::move(job));  // if refused, `job` dies here and breaks the promise
    return future;
}

}  // namespace okserve::pool
