// pool/pool.cpp - Pool: admission, the worker loop, sleeping and waking, sizing, shutdown.
#include "pool/pool.hpp"

#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

namespace okserve::pool {

const char* to_string(Submit s) noexcept {
    switch (s) {
    case Submit::accepted: return "accepted";
    case Submit::full: return "full";
    case Submit::closed: return "closed";
    case Submit::timed_out: return "timed_out";
    }
    return "unknown";
}

namespace {
// Every sleeper also wakes this often to look again. Not needed by the logic, which loses
// no wake-up; it bounds the harm of a lost notify inside the C library (glibc's
// condition variable can lose one: sourceware bug 25847) to a delay instead of a hang.
// An idle pool pays one wake-up per sleeping thread per period: no spinning.
constexpr auto recheck_period = std::chrono::seconds(1);

// Which pool, if any, the current thread works for: a job that shuts down its own pool
// would wait for itself forever, so that call throws instead.
thread_local const Pool* worker_of = nullptr;

Options checked(Options o) {
    if (o.max_workers == 0) {
        throw std::invalid_argument("pool: max_workers must be at least 1");
    }
    if (o.min_workers > o.max_workers) {
        throw std::invalid_argument("pool: min_workers (" + std::to_string(o.min_workers) +
                                    ") exceeds max_workers (" + std::to_string(o.max_workers) + ")");
    }
    if (o.min_workers != 0 && o.idle_timeout.count() <= 0) {
        throw std::invalid_argument("pool: idle_timeout must be positive with dynamic sizing");
    }
    return o;
}
}  // namespace

Pool::Pool(Options options)
    : max_workers_(checked(options).max_workers),
      min_workers_(options.min_workers == options.max_workers ? 0 : options.min_workers),
      capacity_(options.max_workers + options.queue_size),
      idle_timeout_(options.idle_timeout),
      on_worker_start_(options.on_worker_start),
      normal_(capacity_),
      priority_(options.priority_size),
      slots_(max_workers_) {
    stats_.per_worker.assign(max_workers_, 0);
    const std::size_t initial = dynamic() ? min_workers_ : max_workers_;
    try {
        std::lock_guard lock(mu_);
        for (std::size_t i = 0; i < initial; ++i) {
            start_worker_locked(i);
        }
    } catch (...) {
        shutdown();  // stop the workers that did start before reporting the failure
        throw;
    }
}

Pool::~Pool() {
    shutdown();
}

// ---- submission -------------------------------------------------------------------------

Submit Pool::submit(Job&& job) {
    return submit_waiting(job, nullptr);
}

Submit Pool::submit_until(Job&& job, Clock::time_point deadline) {
    return submit_waiting(job, &deadline);
}

Submit Pool::try_submit(Job&& job) noexcept {
    std::unique_lock lock(mu_);
    if (!closed_ && normal_full()) {
        ++stats_.rejected;
        return Submit::full;
    }
    return admit(lock, job, Lane::normal);
}

Submit Pool::try_submit_priority(Job&& job) noexcept {
    std::unique_lock lock(mu_);
    if (!closed_ && priority_.full()) {
        ++stats_.rejected;
        return Submit::full;
    }
    return admit(lock, job, Lane::priority);
}

Submit Pool::submit_waiting(Job& job, const Clock::time_point* deadline) {
    std::unique_lock lock(mu_);
    while (!closed_ && normal_full()) {
        ++blocked_submitters_;
        const auto recheck_at = Clock::now() + recheck_period;
        const bool caller_deadline_first = deadline != nullptr && *deadline < recheck_at;
        const bool timed_out = room_cv_.wait_until(lock, caller_deadline_first ? *deadline : recheck_at) ==
                                   std::cv_status::timeout &&
                               caller_deadline_first;
        --blocked_submitters_;
        if (room_wakes_pending_ > 0) {
            --room_wakes_pending_;
        }
        // Re-check before giving up: room may have freed just as the deadline passed.
        if (timed_out && !closed_ && normal_full()) {
            ++stats_.rejected;
            return Submit::timed_out;
        }
    }
    // Same hand-off as for workers: if room is left after our own push and others still
    // wait, wake the next one.
    const bool room_after_us = normal_.size() + normal_running_ + 1 < capacity_;
    if (!closed_ && room_after_us && blocked_submitters_ > 0 && room_wakes_pending_ == 0) {
        ++room_wakes_pending_;
        room_cv_.notify_one();
    }
    return admit(lock, job, Lane::normal);
}

// Called with the mutex held and room known to exist (or the pool closed). Pushes, decides
// whether a sleeping worker must be woken, and notifies after unlocking so the woken
// worker does not immediately block on the mutex we still hold.
Submit Pool::admit(std::unique_lock<std::mutex>& lock, Job& job, Lane lane) noexcept {
    if (closed_) {
        ++stats_.refused_closed;
        return Submit::closed;
    }
    (lane == Lane::priority ? priority_ : normal_).push(std::move(job));
    ++stats_.accepted;
    const std::size_t depth = normal_.size() + priority_.size();
    if (depth > stats_.max_depth) {
        stats_.max_depth = depth;
    }
    const bool wake = sleeping_ > 0 && wakes_pending_ == 0;
    if (wake) {
        ++wakes_pending_;
    } else if (sleeping_ == 0) {
        grow_if_starved_locked();
    }
    lock.unlock();
    if (wake) {
        work_cv_.notify_one();
    }
    return Submit::accepted;
}

// ---- dynamic sizing ---------------------------------------------------------------------

void Pool::start_worker_locked(std::size_t slot) {
    Slot& s = slots_[slot];
    if (s.thread.joinable()) {
        s.thread.join();  // a retired worker: it has left the loop and only signals live_ now
    }
    live_.add(1);
    try {
        s.thread = std::thread(&Pool::worker_loop, this, slot);
    } catch (...) {
        live_.done();
        throw;
    }
    s.live = true;
    ++live_workers_;
}

// All workers busy and a job waiting: add one, up to max_workers. A failure to start a
// thread is not the submitter's problem (its job is queued), so it is swallowed here and
// the existing workers carry on.
void Pool::grow_if_starved_locked() noexcept {
    if (!dynamic() || live_workers_ >= max_workers_ || busy_ < live_workers_) {
        return;
    }
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        if (!slots_[i].live) {
            try {
                start_worker_locked(i);
            } catch (...) {
            }
            return;
        }
    }
}

// ---- workers ----------------------------------------------------------------------------

// One lock per job: the same critical section records the previous job's outcome and
// takes the next one. The job runs, and its callable is destroyed, outside the mutex.
void Pool::worker_loop(std::size_t slot) {
    worker_of = this;
    if (on_worker_start_) on_worker_start_();
    const std::stop_token stop = stop_.get_token();
    Job job;
    Lane lane = Lane::normal;
    bool ran = false;
    bool ok = false;
    std::unique_lock lock(mu_);
    for (;;) {
        if (ran) {
            account_locked(slot, lane, ok);
        }
        if (!next_job_locked(lock, job, lane)) {
            break;
        }
        // Work left behind: pass the wake-up on to a sleeper, or, if none sleeps and every
        // worker is busy, grow the pool (dynamic sizing only).
        const bool work_left = !(normal_.empty() && priority_.empty());
        const bool pass_on = work_left && sleeping_ > 0 && wakes_pending_ == 0;
        if (pass_on) {
            ++wakes_pending_;
        } else if (work_left && sleeping_ == 0) {
            grow_if_starved_locked();
        }
        lock.unlock();
        if (pass_on) {
            work_cv_.notify_one();
        }
        try {
            ok = job(stop);
        } catch (...) {
            ok = false;  // counted as failed; the worker carries on
        }
        job.reset();
        ran = true;
        lock.lock();
    }
    slots_[slot].live = false;
    --live_workers_;
    lock.unlock();
    live_.done();
}

// Takes the next job, priority lane first. Returns false when the worker should exit:
// the pool is closed and empty, it was cancelled, or an idle dynamic worker retires.
bool Pool::next_job_locked(std::unique_lock<std::mutex>& lock, Job& job, Lane& lane) {
    std::optional<Clock::time_point> idle_since;  // set only if this call has to sleep
    for (;;) {
        if (cancelled_) {
            return false;
        }
        if (!priority_.empty()) {
            job = priority_.pop();
            lane = Lane::priority;
            break;
        }
        if (!normal_.empty()) {
            job = normal_.pop();
            lane = Lane::normal;
            ++normal_running_;
            break;
        }
        if (closed_) {
            return false;
        }
        if (!idle_since) {
            idle_since = Clock::now();
        }
        if (!sleep_locked(lock, *idle_since)) {
            return false;
        }
    }
    ++busy_;
    return true;
}

// Sleeps until notified (or the recheck period passes). Returns false if this worker
// should retire instead: dynamic sizing, idle since `idle_since` for idle_timeout, nothing
// queued, and more than min_workers alive.
bool Pool::sleep_locked(std::unique_lock<std::mutex>& lock, Clock::time_point idle_since) {
    const bool may_retire = dynamic() && live_workers_ > min_workers_;
    auto until = Clock::now() + recheck_period;
    if (may_retire && idle_since + idle_timeout_ < until) {
        until = idle_since + idle_timeout_;
    }
    ++sleeping_;
    const bool timed_out = work_cv_.wait_until(lock, until) == std::cv_status::timeout;
    --sleeping_;
    // Whoever leaves the wait consumes one pending wake-up, whether it was the one notified
    // or not; either way an awake worker now looks at the rings before sleeping again.
    if (wakes_pending_ > 0) {
        --wakes_pending_;
    }
    const bool idle = normal_.empty() && priority_.empty();
    const bool retire = timed_out && may_retire && idle && !closed_ && live_workers_ > min_workers_ &&
                        Clock::now() >= idle_since + idle_timeout_;
    return !retire;
}

void Pool::account_locked(std::size_t slot, Lane lane, bool ok) noexcept {
    --busy_;
    ++(ok ? stats_.completed : stats_.failed);
    ++stats_.per_worker[slot];
    if (lane == Lane::normal) {
        --normal_running_;
        // One wake-up in flight at a time; the woken submitter passes it on (submit_waiting).
        if (blocked_submitters_ > 0 && room_wakes_pending_ == 0) {
            ++room_wakes_pending_;
            room_cv_.notify_one();
        }
    }
}

// ---- shutdown ---------------------------------------------------------------------------

void Pool::refuse_from_own_worker(const char* what) const {
    if (worker_of == this) {
        throw std::logic_error(std::string("pool: ") + what +
                               " called from one of the pool's own jobs would wait for itself");
    }
}

void Pool::close() noexcept {
    {
        std::lock_guard lock(mu_);
        closed_ = true;
    }
    work_cv_.notify_all();
    room_cv_.notify_all();
}

void Pool::join_all() {
    std::lock_guard lock(join_mu_);
    for (Slot& s : slots_) {
        if (s.thread.joinable()) {
            s.thread.join();
        }
    }
}

DrainResult Pool::shutdown() {
    refuse_from_own_worker("shutdown()");
    close();
    live_.wait();
    join_all();
    return {};
}

DrainResult Pool::shutdown_until(Clock::time_point deadline) {
    refuse_from_own_worker("shutdown_until()");
    close();
    if (!live_.wait_until(deadline)) {
        std::lock_guard lock(mu_);
        return {normal_.size() + priority_.size() + busy_};
    }
    join_all();
    return {};
}

std::size_t Pool::cancel() {
    refuse_from_own_worker("cancel()");
    {
        std::lock_guard lock(mu_);
        closed_ = true;
        cancelled_ = true;  // from here on no worker takes a queued job
    }
    stop_.request_stop();
    work_cv_.notify_all();
    room_cv_.notify_all();
    // Destroy dropped jobs one at a time outside the mutex: a job's destructor (closing an
    // fd, breaking a promise) may be slow or may even read this pool's stats.
    std::size_t dropped = 0;
    for (;;) {
        Job job;
        {
            std::lock_guard lock(mu_);
            JobRing& ring = priority_.empty() ? normal_ : priority_;
            if (ring.empty()) {
                break;
            }
            job = ring.pop();
            ++stats_.dropped;
        }
        ++dropped;
    }
    live_.wait();
    join_all();
    return dropped;
}

Stats Pool::stats() const {
    std::lock_guard lock(mu_);
    Stats s = stats_;
    s.workers = live_workers_;
    s.queued = normal_.size() + priority_.size();
    s.queued_priority = priority_.size();
    s.in_flight = busy_;
    s.waiting_submitters = blocked_submitters_;
    return s;
}

}  // namespace okserve::pool
