// pool/pool.cpp - Pool: admission, the worker loop, sleeping and waking, sizing, shutdown.
#include "pool/pool.hpp"

#include <algorithm>
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
// A submitter waiting for room also wakes this often to look again. Not needed by the
// logic, which loses no wake-up; it bounds the harm of a lost notify inside the C library
// (glibc's condition variable can lose one: sourceware bug 25847) to a delay instead of
// a hang. Idle workers park on their own futex instead, and need no such guard.
constexpr auto recheck_period = std::chrono::seconds(1);

// wake_idle() unparks at most this many workers per pass under the mutex.
constexpr std::size_t max_wake_batch = 16;

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
      on_idle_(options.on_idle),
      normal_(capacity_),
      ticket_limit_(capacity_),
      priority_(options.priority_size),
      workers_(std::make_unique<Worker[]>(max_workers_)) {
    idle_.reserve(max_workers_);  // so parking never allocates
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
    return submit_normal(job, Wait::until_room, nullptr);
}

Submit Pool::submit_until(Job&& job, Clock::time_point deadline) {
    return submit_normal(job, Wait::until_room, &deadline);
}

Submit Pool::try_submit(Job&& job, Notify notify) noexcept {
    return submit_normal(job, Wait::no, nullptr, notify);  // never reaches the waiting path
}

void Pool::notify() noexcept { nudge(); }

Submit Pool::submit_normal(Job& job, Wait wait, const Clock::time_point* deadline, Notify notify) {
    std::uint64_t ticket = 0;
    switch (try_push(job, ticket)) {
    case TicketRing::Push::pushed: return after_push(ticket, false, notify);
    case TicketRing::Push::closed:
        refused_closed_.fetch_add(1, std::memory_order_relaxed);
        return Submit::closed;
    case TicketRing::Push::full: break;
    }
    if (wait == Wait::no) {
        rejected_.fetch_add(1, std::memory_order_relaxed);
        return Submit::full;
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
Submit Pool::after_push(std::uint64_t ticket, bool waited, Notify notify) noexcept {
    // The other half of the sleep handshake (see next_job). The push published its cell
    // with a seq_cst store and nudge() reads sleeping_ with a seq_cst load, so either the
    // worker's recheck sees the job or we see the worker. With Notify::later the caller
    // makes that load itself, in notify(), after its last push.
    if (notify == Notify::now) nudge();
    // The depth needs the ring's head, a cache line every pop writes: reading it on every
    // push would cost the busy workers a miss per job. So it is sampled: every 64th
    // ticket, and every push that had to wait for room (when the queue is at its deepest).
    if (waited || ticket % depth_sample_every == 0) {
        record_depth(normal_.size() + priority_queued_.load(std::memory_order_relaxed));
    }
    return Submit::accepted;
}

// A job is waiting: wake a parked worker unless one is already waking, or, if none is
// parked, consider adding a worker (dynamic sizing only). One waking worker is enough:
// it looks at both lanes once it is up, and wakes the next if more work is left. So a
// burst of submits to a sleeping pool costs one wake-up system call, not one per job.
void Pool::nudge() noexcept {
    if (sleeping_.load(std::memory_order_seq_cst) > 0) {
        if (waking_.load(std::memory_order_seq_cst) == 0) {
            wake_idle(1);
        }
    } else if (dynamic() && live_workers_.load(std::memory_order_relaxed) < max_workers_) {
        std::lock_guard lock(mu_);
        grow_if_starved_locked();
    }
}

// Takes up to `n` workers off the idle stack, newest first (its cache is warmest), and
// unparks them after unlocking. `n` = 1 only when no other wake-up is on its way.
void Pool::wake_idle(std::size_t n) noexcept {
    std::size_t picked[max_wake_batch];
    std::size_t count = 0;
    {
        std::lock_guard lock(mu_);
        if (n == 1 && waking_.load(std::memory_order_relaxed) != 0) {
            return;
        }
        while (count < n && count < max_wake_batch && !idle_.empty()) {
            picked[count++] = idle_.back();
            idle_.pop_back();
        }
        sleeping_.fetch_sub(count, std::memory_order_seq_cst);
        waking_.fetch_add(count, std::memory_order_seq_cst);
    }
    for (std::size_t i = 0; i < count; ++i) {
        workers_[picked[i]].parker.unpark();
    }
}

// Every parked worker looks again: at close, and when a worker leaves after the drain.
void Pool::wake_all_idle() noexcept {
    while (sleeping_.load(std::memory_order_seq_cst) > 0) {
        wake_idle(max_wake_batch);
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
    nudge();  // no handshake needed here: pushing and rechecking both happen under mu_
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
    while (next_job(slot, job, lane)) {
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
    if (normal_.closed()) {
        wake_all_idle();  // a peer parked while the last pushes landed: let it see the drain
    }
    live_.done();
}

// Takes the next job, priority lane first. Returns false when the worker should exit:
// cancelled, closed with both lanes empty, or an idle dynamic worker retires.
//
// The sleep handshake, worker side: under mu_, put ourselves on the idle stack and bump
// sleeping_, then look at both lanes once more. A submitter publishes its push, then
// reads sleeping_. All four steps are seq_cst, so they fall in one total order: either
// our look comes after the push (we see the job) or its read comes after our bump (it
// sees us and unparks us). An unpark that lands before we park leaves a token, so it is
// never lost. (Fences would say the same, but ThreadSanitizer cannot check fences.)
bool Pool::next_job(std::size_t slot, Job& job, Lane& lane) {
    Worker& self = workers_[slot];
    // Marked busy before passing work on: dynamic sizing grows only when all are busy.
    auto busy = [&self](Lane l) { self.running.store(l == Lane::normal ? 1 : 2, std::memory_order_relaxed); };
    // The lock-free look, first thing and again right after an unpark.
    auto take_without_lock = [&]() {
        if (cancelled_.load(std::memory_order_relaxed)) {
            return false;
        }
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
        return false;
    };
    if (take_without_lock()) {
        return true;
    }
    // Before the sleep handshake: work from elsewhere, as long as there is some.
    while (on_idle_ && !cancelled_.load(std::memory_order_relaxed) && !normal_.closed() && on_idle_()) {
        if (take_without_lock()) {
            return true;
        }
    }
    std::optional<Clock::time_point> idle_since;  // set only if this call has to sleep
    std::unique_lock lock(mu_);
    for (;;) {
        idle_.push_back(slot);
        sleeping_.fetch_add(1, std::memory_order_seq_cst);
        // Still holding mu_ since the push_back, so we are on top of the stack.
        auto withdraw = [this] {
            idle_.pop_back();
            sleeping_.fetch_sub(1, std::memory_order_seq_cst);
        };
        if (cancelled_.load(std::memory_order_relaxed)) {
            withdraw();
            return false;
        }
        if (take_locked(job, lane)) {
            withdraw();
            busy(lane);
            lock.unlock();
            pass_on_if_work_left();
            return true;
        }
        if (normal_.drained() && priority_.empty()) {
            withdraw();
            return false;  // closed, and every accepted job is with some worker
        }
        if (!idle_since) {
            idle_since = Clock::now();
        }
        // Only a dynamic worker that may retire sleeps with a deadline; the others sleep
        // until unparked, so an idle fixed-size pool makes no wake-ups at all.
        const bool may_retire = dynamic() && live_workers_.load(std::memory_order_relaxed) > min_workers_;
        const Clock::time_point retire_at = *idle_since + idle_timeout_;
        lock.unlock();
        if (self.parker.park(may_retire ? &retire_at : nullptr)) {
            // Unparked: the waker took us off the stack and counted us in waking_. Stop
            // counting, then look (the handshake's order: see wake_idle and nudge).
            waking_.fetch_sub(1, std::memory_order_seq_cst);
            if (take_without_lock()) {
                return true;
            }
            lock.lock();
        } else {
            lock.lock();
            const auto me = std::find(idle_.begin(), idle_.end(), slot);
            if (me != idle_.end()) {
                idle_.erase(me);
                sleeping_.fetch_sub(1, std::memory_order_seq_cst);
            } else {
                // A waker took us off the stack just as time ran out; its unpark() is
                // coming (or came): take that token so the next park() is not cut short.
                lock.unlock();
                self.parker.park(nullptr);
                lock.lock();
                waking_.fetch_sub(1, std::memory_order_seq_cst);
            }
            if (normal_.empty() && priority_.empty() && !normal_.closed() &&
                live_workers_.load(std::memory_order_relaxed) > min_workers_) {
                return false;  // retire
            }
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
    const bool sleeper =
        sleeping_.load(std::memory_order_relaxed) > 0 && waking_.load(std::memory_order_relaxed) == 0;
    const bool may_grow =
        !sleeper && dynamic() && live_workers_.load(std::memory_order_relaxed) < max_workers_;
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
// dropping mu_ before notifying: a submitter that checked the flag under mu_ just before
// we set it is inside its wait by the time we get the mutex, so the notify reaches it.
// A worker that checked it is on the idle stack by then, and wake_all_idle() finds it.
void Pool::close() noexcept {
    normal_.close();
    { std::lock_guard lock(mu_); }
    wake_all_idle();
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
