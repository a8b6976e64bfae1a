// pool/pool.hpp - Pool: worker threads fed by a bounded queue, with backpressure and shutdown.
// Owns its threads, its two rings of Jobs and their accounting; knows nothing of sockets or HTTP.
#pragma once

// Design, in brief (docs/pool.md has the long version):
// - The normal lane is a TicketRing: submitters push and workers pop without a lock.
//   A small priority lane (a JobRing under the mutex) is emptied first; workers look at
//   an atomic count before they touch its lock, so it costs nothing while unused.
// - Capacity rule: a normal job holds a place from submit until it *finishes*, so
//   queued + running <= max_workers + queue_size. Jobs accepted are the ring's tickets,
//   jobs finished are counters each worker keeps on its own cache line; a push may take
//   ticket t only while t < finished + capacity. Submitters keep that limit cached and
//   only add up the workers' counters again when it says "full". With every worker
//   busy, exactly queue_size more jobs wait. The priority lane holds priority_size more.
// - Sleeping: an idle worker parks on its own futex (Parker) and waits on an "idle"
//   stack; blocked submitters wait on a condition variable. Nobody spins. Before parking
//   a worker puts itself on the stack and looks at the lanes once more; after pushing, a
//   submitter looks at the stack's size. All four steps are seq_cst atomics, so at least
//   one of the two sees the other, and no wake-up is lost. A submit while nobody is
//   parked costs no lock and no system call; a burst of submits to a sleeping pool costs
//   one wake-up, which the woken worker passes on if work is left. The newest idle
//   worker wakes first.
// - Shutdown: close() sets a flag inside the ring's tail counter, so after it the set of
//   accepted jobs is final. Drain = close, workers empty both lanes and exit, wait on a
//   WaitGroup of live workers (optionally with a deadline). Cancel = close, workers stop
//   taking jobs, request_stop() on the token every job receives, wait, drop the rest.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <stop_token>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "pool/bounded_queue.hpp"
#include "pool/job.hpp"
#include "pool/wait_group.hpp"
#include "pool/parker.hpp"
#include "pool/stats.hpp"
#include "pool/ticket_ring.hpp"

namespace okserve::pool {

// Every submission says whether the job was taken. On anything but `accepted` the caller
// still owns its Job (and the fd inside it) and decides what to do (answer 503, retry).
enum class Submit : std::uint8_t { accepted, full, closed, timed_out };

// When a submit wakes a parked worker: at once, or `later`, when the caller, having
// submitted a whole batch, calls notify(). A caller that hands over several jobs in a row
// (a dispatcher with a batch of ready connections) so pays one wake-up for the batch, and
// is not preempted by the woken worker before the batch is all in.
enum class Notify : std::uint8_t { now, later };

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
    Submit try_submit(Job&& job, Notify notify = Notify::now) noexcept;  // `full` at once instead of waiting
    // After submits with Notify::later: wakes a parked worker if any job may be waiting.
    void notify() noexcept;
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

    // A snapshot. Never stops a worker: the counters are read one by one, so while jobs run
    // two fields may be a moment apart; on a quiet or shut-down pool they are exact.
    Stats stats() const;

private:
    enum class Lane : std::uint8_t { normal, priority };
    // One possible worker thread; dynamic sizing reuses retired slots. The counters are
    // written only by the slot's own thread and read by others, on a cache line of their
    // own: completed and failed are plain increments, released a locked one (it takes part
    // in the handshake with waiting submitters) but still on a line nobody else writes.
    struct alignas(64) Worker {
        std::thread thread;                    // guarded by mu_
        bool live = false;                     // guarded by mu_
        std::atomic<std::uint8_t> running{0};  // 0 idle, 1 a normal job, 2 a priority job
        std::atomic<std::uint64_t> completed{0};
        std::atomic<std::uint64_t> failed{0};
        std::atomic<std::uint64_t> released{0};  // normal jobs finished: places given back
        Parker parker;                           // where this worker sleeps when idle
    };

    // submitting
    enum class Wait : std::uint8_t { no, until_room };
    Submit submit_normal(Job& job, Wait wait, const Clock::time_point* deadline, Notify notify = Notify::now);
    TicketRing::Push try_push(Job& job, std::uint64_t& ticket) noexcept;
    Submit wait_and_push(Job& job, const Clock::time_point* deadline);
    Submit after_push(std::uint64_t ticket, bool waited, Notify notify = Notify::now) noexcept;
    std::uint64_t finished_normal() const noexcept;
    void place_released() noexcept;
    void nudge() noexcept;
    void wake_idle(std::size_t n) noexcept;
    void wake_all_idle() noexcept;
    void wake_submitter() noexcept;
    bool dynamic() const noexcept { return min_workers_ != 0; }
    void start_worker_locked(std::size_t slot);
    void grow_if_starved_locked() noexcept;

    // working
    void worker_loop(std::size_t slot);
    bool next_job(std::size_t slot, Job& job, Lane& lane);
    bool take_priority(Job& job) noexcept;
    bool take_locked(Job& job, Lane& lane) noexcept;
    void pass_on_if_work_left() noexcept;
    std::size_t running_count_locked(std::uint8_t lane_mark) const noexcept;
    void record_depth(std::size_t depth) noexcept;

    // shutting down
    void refuse_from_own_worker(const char* what) const;
    void close() noexcept;
    void join_all();

    const std::size_t max_workers_;
    const std::size_t min_workers_;
    const std::size_t capacity_;
    const std::chrono::milliseconds idle_timeout_;
    const std::function<void()> on_worker_start_;
    const std::function<bool()> on_idle_;

    TicketRing normal_;  // the normal lane: no lock

    // Admission: a push may take ticket t only if t < ticket_limit_, a cached copy of
    // (normal jobs finished + capacity). Submitters refresh it when it says "full".
    alignas(64) std::atomic<std::uint64_t> ticket_limit_;
    std::atomic<std::size_t> waiting_submitters_{0};  // in wait_and_push

    // Sleep bookkeeping, read without mu_ on the fast paths. sleeping_ changes only under
    // mu_, with idle_; waking_ rises under mu_ and falls as each woken worker resumes.
    alignas(64) std::atomic<std::size_t> sleeping_{0};  // idle_.size()
    std::atomic<std::size_t> waking_{0};                // unparked, not yet looking at the lanes
    std::atomic<std::size_t> room_wakes_pending_{0};    // room_cv_ notifies not yet consumed
    std::atomic<std::size_t> priority_queued_{0};       // priority_.size(), readable without mu_
    std::atomic<std::size_t> live_workers_{0};
    std::atomic<bool> cancelled_{false};

    // Counters of rarer events, and the deepest queue seen.
    alignas(64) std::atomic<std::uint64_t> priority_accepted_{0};
    std::atomic<std::uint64_t> rejected_{0};
    std::atomic<std::uint64_t> refused_closed_{0};
    std::atomic<std::uint64_t> dropped_{0};
    std::atomic<std::uint64_t> dropped_normal_{0};  // their places are free, like finished ones
    std::atomic<std::size_t> max_depth_{0};

    alignas(64) mutable std::mutex mu_;
    std::condition_variable room_cv_;          // submitters waiting for room sleep here
    std::vector<std::size_t> idle_;            // parked workers' slots, newest last (a stack)
    JobRing priority_;                         // guarded by mu_
    const std::unique_ptr<Worker[]> workers_;  // max_workers_ slots, never moved

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
