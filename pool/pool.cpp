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

// Stats::max_depth is sampled on one normal push in this many (see after_push).
constexpr std::uint64_t depth_sample_every = 64;

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
      ticket_limit_(capacity_),
      priority_(options.priority_size),
      workers_(std::make_unique<Worker[]>(max_workers_)) {
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
//
// A normal submit is two steps: push into the ring under the capacity limit, then make
// sure a worker will look. Only a full pool or a sleeping worker takes the mutex.

Submit Pool::submit(Job&& job) {
    return submit_waiting(job, nullptr);
}

Submit Pool::submit_until(Job&& job, Clock::time_point deadline) {
    return submit_waiting(job, &deadline);
}

Submit Pool::try_submit(Job&& job) noexcept {
    std::uint64_t ticket = 0;
    switch (try_push(job, ticket)) {
    case TicketRing::Push::pushed: return after_push(ticket, false);
    case TicketRing::Push::closed: refused_closed_.fetch_add(1, std::memory_order_relaxed); return Submit::closed;
    case TicketRing::Push::full: break;
    }
    rejected_.fetch_add(1, std::memory_order_relaxed);
    return Submit::full;
}

Submit Pool::submit_waiting(Job& job, const Clock::time_point* deadline) {
    std::uint64_t ticket = 0;
    switch (try_push(job, ticket)) {
    case TicketRing::Push::pushed: return after_push(ticket, false);
    case TicketRing::Push::closed: refused_closed_.fetch_add(1, std::memory_order_relaxed); return Submit::closed;
    case TicketRing::Push::full: break;
    }
    return wait_and_push(job, deadline);
}

// Jobs finished (or dropped) in the normal lane. Each worker's counter has one writer.
std::uint64_t Pool::finished_normal() const noexcept {
    std::uint64_t n = dropped_normal_.load(std::memory_order_seq_cst);
    for (std::size_t i = 0; i < max_workers_; ++i) {
        n += workers_[i].released.load(std::memory_order_seq_cst);
    }
    return n;
}

// One push under the cached limit; if that says full, count the finished jobs again and
// raise the limit (never lower it: another submitter may have seen a newer count).
TicketRing::Push Pool::try_push(Job& job, std::uint64_t& ticket) noexcept {
    const TicketRing::Push first = normal_.push(job, ticket_limit_.load(std::memory_order_acquire), ticket);
    if (first != TicketRing::Push::full) {
        return first;
    }
    const std::uint64_t fresh = finished_normal() + capacity_;
    std::uint64_t cached = ticket_limit_.load(std::memory_order_relaxed);
    while (fresh > cached && !ticket_limit_.compare_exchange_weak(cached, fresh, std::memory_order_acq_rel)) {
    }
    return normal_.push(job, fresh > cached ? fresh : cached, ticket);
}

// The slow path of a full pool. No lost wake-up: this thread counts itself in
// waiting_submitters_ and only then counts finished jobs again; a finishing worker bumps
// its counter and only then reads waiting_submitters_. Both sides are seq_cst, so either
// the retry sees the freed place or the worker sees the waiter (and notifies under mu_,
// which this thread holds until it is inside the wait).
Submit Pool::wait_and_push(Job& job, const Clock::time_point* deadline) {
    std::unique_lock lock(mu_);
    waiting_submitters_.fetch_add(1, std::memory_order_seq_cst);
    Submit result = Submit::accepted;
    std::uint64_t ticket = 0;
    for (;;) {
        const TicketRing::Push r = try_push(job, ticket);
        if (r != TicketRing::Push::full) {
            result = r == TicketRing::Push::pushed ? Submit::accepted : Submit::closed;
            break;
        }
        const auto now = Clock::now();
        if (deadline != nullptr && now >= *deadline) {
            result = Submit::timed_out;
            break;
        }
        const auto recheck_at = now + recheck_period;
        room_cv_.wait_until(lock, deadline != nullptr && *deadline < recheck_at ? *deadline : recheck_at);
        if (room_wakes_pending_.load(std::memory_order_relaxed) > 0) {
            room_wakes_pending_.fetch_sub(1, std::memory_order_seq_cst);
        }
    }
    waiting_submitters_.fetch_sub(1, std::memory_order_seq_cst);
    // Like workers, pass the wake-up on: room may be left for the next waiter too.
    const bool pass_on = result == Submit::accepted && waiting_submitters_.load() > 0 &&
                         room_wakes_pending_.load() == 0 && normal_.pushed() < ticket_limit_.load();
    if (pass_on) {
        room_wakes_pending_.fetch_add(1, std::memory_order_seq_cst);
    }
    lock.unlock();
    if (pass_on) {
        room_cv_.notify_one();
    }
    if (result == Submit::accepted) {
        return after_push(ticket, true);
    }
    (result == Submit::timed_out ? rejected_ : refused_closed_).fetch_add(1, std::memory_order_relaxed);
    return result;
}

// The job is in the ring: make sure some worker will look at it.
Submit Pool::after_push(std::uint64_t ticket, bool waited) noexcept {
    // The other half of the sleep handshake (see next_job): the push is visible before we
    // read sleeping_, or the worker's count is visible to us.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    nudge();
    // The depth needs the ring's head, a cache line every pop writes: reading it on every
    // push would cost the busy workers a miss per job. So it is sampled: every 64th
    // ticket, and every push that had to wait for room (when the queue is at its deepest).
    if (waited || ticket % depth_sample_every == 0) {
        record_depth(normal_.size() + priority_queued_.load(std::memory_order_relaxed));
    }
    return Submit::accepted;
}

// A job is waiting: wake a sleeping worker unless a wake-up is already on its way, or, if
// nobody sleeps, consider adding a worker (dynamic sizing only). A pending wake-up is
// enough: the worker it reaches looks at both lanes after it stops counting as asleep,
// and passes the wake-up on if more work is left.
void Pool::nudge() noexcept {
    if (sleeping_.load(std::memory_order_relaxed) > 0) {
        if (wakes_pending_.load(std::memory_order_relaxed) != 0) {
            return;
        }
        bool wake = false;
        {
            std::lock_guard lock(mu_);
            if (sleeping_.load(std::memory_order_relaxed) > 0 && wakes_pending_.load(std::memory_order_relaxed) == 0) {
                wakes_pending_.fetch_add(1, std::memory_order_seq_cst);
                wake = true;
            }
        }
        if (wake) {
            work_cv_.notify_one();  // after unlocking, so the woken worker need not wait for mu_
        }
    } else if (dynamic() && live_workers_.load(std::memory_order_relaxed) < max_workers_) {
        std::lock_guard lock(mu_);
        grow_if_starved_locked();
    }
}

Submit Pool::try_submit_priority(Job&& job) noexcept {
    {
        std::lock_guard lock(mu_);
        if (normal_.closed()) {
            refused_closed_.fetch_add(1, std::memory_order_relaxed);
            return Submit::closed;
        }
        if (priority_.full()) {
            rejected_.fetch_add(1, std::memory_order_relaxed);
            return Submit::full;
        }
        priority_.push(std::move(job));
        priority_queued_.fetch_add(1, std::memory_order_seq_cst);
        priority_accepted_.fetch_add(1, std::memory_order_relaxed);
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
    nudge();
    record_depth(normal_.size() + priority_queued_.load(std::memory_order_relaxed));
    return Submit::accepted;
}

void Pool::record_depth(std::size_t depth) noexcept {
    std::size_t seen = max_depth_.load(std::memory_order_relaxed);
    while (depth > seen && !max_depth_.compare_exchange_weak(seen, depth, std::memory_order_relaxed)) {
    }
}

// A normal job finished (or was dropped) and its counter went up: wake one waiting
// submitter unless a wake-up is already on its way; the woken one passes it on if room
// is left. The caller's counter increment was seq_cst: see wait_and_push.
void Pool::place_released() noexcept {
    if (waiting_submitters_.load(std::memory_order_seq_cst) > 0 &&
        room_wakes_pending_.load(std::memory_order_seq_cst) == 0) {
        wake_submitter();
    }
}

void Pool::wake_submitter() noexcept {
    bool wake = false;
    {
        std::lock_guard lock(mu_);
        if (waiting_submitters_.load(std::memory_order_relaxed) > 0 &&
            room_wakes_pending_.load(std::memory_order_relaxed) == 0) {
            room_wakes_pending_.fetch_add(1, std::memory_order_seq_cst);
            wake = true;
        }
    }
    if (wake) {
        room_cv_.notify_one();
    }
}

// ---- dynamic sizing ---------------------------------------------------------------------

void Pool::start_worker_locked(std::size_t slot) {
    Worker& w = workers_[slot];
    if (w.thread.joinable()) {
        w.thread.join();  // a retired worker: it has left the loop and only signals live_ now
    }
    live_.add(1);
    try {
        w.thread = std::thread(&Pool::worker_loop, this, slot);
    } catch (...) {
        live_.done();
        throw;
    }
    w.live = true;
    live_workers_.fetch_add(1, std::memory_order_relaxed);
}

std::size_t Pool::running_count_locked(std::uint8_t lane_mark) const noexcept {
    std::size_t n = 0;
    for (std::size_t i = 0; i < max_workers_; ++i) {
        const std::uint8_t r = workers_[i].running.load(std::memory_order_relaxed);
        n += lane_mark == 0 ? (r != 0) : (r == lane_mark);
    }
    return n;
}

// All workers busy and a job waiting: add one, up to max_workers. A failure to start a
// thread is not the submitter's problem (its job is queued), so it is swallowed here and
// the existing workers carry on.
void Pool::grow_if_starved_locked() noexcept {
    const std::size_t live = live_workers_.load(std::memory_order_relaxed);
    if (!dynamic() || live >= max_workers_ || running_count_locked(0) < live) {
        return;
    }
    if (normal_.empty() && priority_.empty()) {
        return;
    }
    for (std::size_t i = 0; i < max_workers_; ++i) {
        if (!workers_[i].live) {
            try {
                start_worker_locked(i);
            } catch (...) {
            }
            return;
        }
    }
}

// ---- workers ----------------------------------------------------------------------------

void Pool::worker_loop(std::size_t slot) {
    worker_of = this;
    if (on_worker_start_) on_worker_start_();
    const std::stop_token stop = stop_.get_token();
    Worker& self = workers_[slot];
    Job job;
    Lane lane = Lane::normal;
    while (next_job(self, job, lane)) {
        bool ok = false;
        try {
            ok = job(stop);
        } catch (...) {
            ok = false;  // counted as failed; the worker carries on
        }
        job.reset();
        // Only this thread writes these counters: a plain load and store, no locked add.
        std::atomic<std::uint64_t>& counter = ok ? self.completed : self.failed;
        counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        self.running.store(0, std::memory_order_relaxed);
        if (lane == Lane::normal) {
            self.released.fetch_add(1, std::memory_order_seq_cst);  // on our own line: cheap
            place_released();
        }
    }
    {
        std::lock_guard lock(mu_);
        self.live = false;
        live_workers_.fetch_sub(1, std::memory_order_relaxed);
    }
    work_cv_.notify_all();  // a worker leaving at shutdown lets sleeping peers look again
    live_.done();
}

// Takes the next job, priority lane first. Returns false when the worker should exit:
// cancelled, closed with both lanes empty, or an idle dynamic worker retires.
//
// The sleep handshake, worker side: under mu_, count ourselves in sleeping_, fence, then
// look at both lanes once more. A submitter pushes, fences, then reads sleeping_. So
// either we see its job here, or it sees us asleep and notifies (taking mu_, which we
// hold until we are inside the wait).
bool Pool::next_job(Worker& self, Job& job, Lane& lane) {
    // Marked busy before passing work on: dynamic sizing grows only when all are busy.
    auto busy = [&self](Lane l) { self.running.store(l == Lane::normal ? 1 : 2, std::memory_order_relaxed); };
    if (!cancelled_.load(std::memory_order_relaxed)) {
        if (priority_queued_.load(std::memory_order_relaxed) > 0 && take_priority(job)) {
            lane = Lane::priority;
            busy(lane);
            return true;
        }
        if (normal_.try_pop(job)) {
            lane = Lane::normal;
            busy(lane);
            pass_on_if_work_left();
            return true;
        }
    }
    std::optional<Clock::time_point> idle_since;  // set only if this call has to sleep
    std::unique_lock lock(mu_);
    for (;;) {
        sleeping_.fetch_add(1, std::memory_order_seq_cst);
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (cancelled_.load(std::memory_order_relaxed)) {
            sleeping_.fetch_sub(1, std::memory_order_seq_cst);
            return false;
        }
        if (take_locked(job, lane)) {
            sleeping_.fetch_sub(1, std::memory_order_seq_cst);
            busy(lane);
            lock.unlock();
            pass_on_if_work_left();
            return true;
        }
        if (normal_.drained() && priority_.empty()) {
            sleeping_.fetch_sub(1, std::memory_order_seq_cst);
            return false;  // closed, and every accepted job is with some worker
        }
        const auto now = Clock::now();
        if (!idle_since) {
            idle_since = now;
        }
        const bool may_retire = dynamic() && live_workers_.load(std::memory_order_relaxed) > min_workers_;
        auto until = now + recheck_period;
        if (may_retire && *idle_since + idle_timeout_ < until) {
            until = *idle_since + idle_timeout_;
        }
        const bool timed_out = work_cv_.wait_until(lock, until) == std::cv_status::timeout;
        sleeping_.fetch_sub(1, std::memory_order_seq_cst);
        // Whoever leaves the wait consumes one pending wake-up, whether it was the one
        // notified or not; either way an awake worker now looks at the lanes.
        if (wakes_pending_.load(std::memory_order_relaxed) > 0) {
            wakes_pending_.fetch_sub(1, std::memory_order_seq_cst);
        }
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (timed_out && may_retire && normal_.empty() && priority_.empty() && !normal_.closed() &&
            live_workers_.load(std::memory_order_relaxed) > min_workers_ &&
            Clock::now() >= *idle_since + idle_timeout_) {
            return false;  // retire
        }
    }
}

// Under mu_: the priority lane, then the ring.
bool Pool::take_locked(Job& job, Lane& lane) noexcept {
    if (!priority_.empty()) {
        job = priority_.pop();
        priority_queued_.fetch_sub(1, std::memory_order_relaxed);
        lane = Lane::priority;
        return true;
    }
    if (normal_.try_pop(job)) {
        lane = Lane::normal;
        return true;
    }
    return false;
}

bool Pool::take_priority(Job& job) noexcept {
    std::lock_guard lock(mu_);
    if (priority_.empty()) {
        return false;
    }
    job = priority_.pop();
    priority_queued_.fetch_sub(1, std::memory_order_relaxed);
    return true;
}

// After taking a job: if more is waiting and a peer sleeps (or could be added), make sure
// it will look. Checks the cheap, rarely written counters first, so a busy lone worker
// pays two loads here and never reads the line submitters write.
void Pool::pass_on_if_work_left() noexcept {
    const bool sleeper = sleeping_.load(std::memory_order_relaxed) > 0 &&
                         wakes_pending_.load(std::memory_order_relaxed) == 0;
    const bool may_grow = !sleeper && dynamic() && live_workers_.load(std::memory_order_relaxed) < max_workers_;
    if ((sleeper || may_grow) && (!normal_.empty() || priority_queued_.load(std::memory_order_relaxed) > 0)) {
        nudge();
    }
}

// ---- shutdown ---------------------------------------------------------------------------

void Pool::refuse_from_own_worker(const char* what) const {
    if (worker_of == this) {
        throw std::logic_error(std::string("pool: ") + what +
                               " called from one of the pool's own jobs would wait for itself");
    }
}

// After normal_.close() no push can succeed, so the accepted set is final. Taking and
// dropping mu_ before notifying: a thread that checked the flag under mu_ just before we
// set it is inside its wait by the time we get the mutex, so the notify reaches it.
void Pool::close() noexcept {
    normal_.close();
    {
        std::lock_guard lock(mu_);
    }
    work_cv_.notify_all();
    room_cv_.notify_all();
}

void Pool::join_all() {
    std::lock_guard lock(join_mu_);
    for (std::size_t i = 0; i < max_workers_; ++i) {
        if (workers_[i].thread.joinable()) {
            workers_[i].thread.join();
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
        const std::uint64_t normal_left = normal_.pushed() - finished_normal();
        return {static_cast<std::size_t>(normal_left) + priority_.size() + running_count_locked(2)};
    }
    join_all();
    return {};
}

// Workers stop taking jobs first; once every worker has returned, the jobs left in the
// lanes are destroyed one by one, outside the mutex (a job's destructor may be slow, or
// may read this pool's stats). A push that got its ticket before the close may still be
// writing its cell: drained() waits for it.
std::size_t Pool::cancel() {
    refuse_from_own_worker("cancel()");
    cancelled_.store(true, std::memory_order_seq_cst);  // from here on no worker takes a queued job
    stop_.request_stop();
    close();
    live_.wait();
    join_all();
    std::size_t dropped = 0;
    for (;;) {
        Job job;
        bool priority = false;
        {
            std::lock_guard lock(mu_);
            if (!priority_.empty()) {
                job = priority_.pop();
                priority_queued_.fetch_sub(1, std::memory_order_relaxed);
                priority = true;
            }
        }
        if (!priority && !normal_.try_pop(job)) {
            if (normal_.drained()) {
                break;
            }
            std::this_thread::yield();  // a push is still writing its cell
            continue;
        }
        job.reset();
        if (!priority) {
            dropped_normal_.fetch_add(1, std::memory_order_seq_cst);
            place_released();
        }
        dropped_.fetch_add(1, std::memory_order_relaxed);
        ++dropped;
    }
    return dropped;
}

Stats Pool::stats() const {
    Stats s;
    std::lock_guard lock(mu_);
    s.workers = live_workers_.load(std::memory_order_relaxed);
    s.queued_priority = priority_.size();
    s.queued = normal_.size() + s.queued_priority;
    s.in_flight = running_count_locked(0);
    s.max_depth = max_depth_.load(std::memory_order_relaxed);
    s.waiting_submitters = waiting_submitters_.load(std::memory_order_relaxed);
    s.accepted = normal_.pushed() + priority_accepted_.load(std::memory_order_relaxed);
    s.rejected = rejected_.load(std::memory_order_relaxed);
    s.refused_closed = refused_closed_.load(std::memory_order_relaxed);
    s.dropped = dropped_.load(std::memory_order_relaxed);
    s.per_worker.resize(max_workers_);
    for (std::size_t i = 0; i < max_workers_; ++i) {
        const std::uint64_t done = workers_[i].completed.load(std::memory_order_relaxed);
        const std::uint64_t failed = workers_[i].failed.load(std::memory_order_relaxed);
        s.completed += done;
        s.failed += failed;
        s.per_worker[i] = done + failed;
    }
    return s;
}

}  // namespace okserve::pool
