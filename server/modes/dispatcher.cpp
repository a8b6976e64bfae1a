#include "server/modes/dispatcher.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include "server/acceptor.hpp"
#include "server/socket_driver.hpp"
#include "server/sys/error.hpp"
#include "server/sys/eventfd.hpp"

namespace okserve {

namespace {
constexpr int max_events = 256;
constexpr std::int64_t full_pause_ms = 10;      // --max-connections reached, nothing to evict
constexpr std::int64_t busy_recheck_ms = 10;    // a timer found its connection busy
constexpr std::int64_t backlog_retry_ms = 1;    // the executor was full: try again this soon
constexpr std::uint32_t connection_events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

int set_thread_batch(bool batch) noexcept {
    sched_param param{};
    return ::pthread_setschedparam(::pthread_self(), batch ? SCHED_BATCH : SCHED_OTHER, &param);
}

}  // namespace

Dispatcher::Dispatcher(const ModeSetup& setup, EventLoop& rejecter)
    : setup_(setup),
      rejecter_(rejecter),
      wake_(make_eventfd()),
      tally_(setup.stats.new_tally()),
      slots_(setup.config.max_connections) {
    if (int err = poller_.add(wake_.get(), EPOLLIN, wake_token)) throw SysError("start", "epoll_ctl", err);
    const Config& c = setup.config;
    recheck_ms_ = std::min({c.header_timeout, c.body_timeout, c.keepalive_timeout, c.write_timeout, c.linger_timeout})
                      .count();
    free_.reserve(slots_.size());
}

Dispatcher::~Dispatcher() = default;

// ---- the dispatcher thread -------------------------------------------------------------

void Dispatcher::run() {
    // The dispatcher only hands work over. Under ordinary scheduling, every packet that
    // arrives wakes it and it preempts the worker sharing its core; SCHED_BATCH turns off
    // that wake-up preemption, so it runs when a worker sleeps and finds a whole batch of
    // events ready. README.md "Performance" has the measured difference.
    if (setup_.config.batch_dispatcher) {
        if (int err = set_thread_batch(true)) {
            std::fprintf(stderr, "okserve: pthread_setschedparam(SCHED_BATCH): %s; using normal scheduling\n",
                         std::string(errno_text(err)).c_str());
        }
    }
    resume_accept();
    epoll_event events[max_events];
    std::int64_t now = now_ms();
    for (;;) {
        const int n = poller_.wait(events, max_events, wait_timeout(now));
        now = now_ms();
        for (int i = 0; i < n; ++i) {
            const std::uint64_t tok = events[i].data.u64;
            if (tok == listener_token) on_listener(now);
            else if (tok == wake_token) on_wake(now);
            else on_connection(tok, events[i].events);
        }
        if (commands_.load(std::memory_order_acquire) & cut_flag) return;  // see close_remaining()
        flush_backlog();
        expire(now);
        // One wake-up for everything this iteration handed over: the woken worker does not
        // preempt the dispatcher before the batch is all in.
        if (submitted_) {
            submitted_ = false;
            executor_.notify();
        }
        if (resume_accept_at_ >= 0 && now >= resume_accept_at_ && backlog_.empty()) resume_accept();
        if (draining_.load(std::memory_order_relaxed) && open_.load() == 0) return;
    }
}

int Dispatcher::wait_timeout(std::int64_t now) const {
    if (!backlog_.empty()) return static_cast<int>(backlog_retry_ms);
    std::int64_t due = resume_accept_at_;
    if (!timers_.empty() && (due < 0 || timers_.top().due_ms < due)) due = timers_.top().due_ms;
    // While draining, look at the count of open connections often.
    if (draining_.load(std::memory_order_relaxed) && (due < 0 || now + 20 < due)) due = now + 20;
    if (due < 0) return -1;
    return static_cast<int>(std::clamp<std::int64_t>(due - now, 0, 60'000));
}

void Dispatcher::on_listener(std::int64_t now) {
    const int listen_fd = setup_.listeners[0].fd.get();
    for (int i = 0; i < accepts_per_wakeup && accepting_; ++i) {
        SharedConnection* c = acquire();
        if (c == nullptr && evict_oldest_idle()) {
            pause_accept(now + backlog_retry_ms);  // its slot frees once a worker closes it
            return;
        }
        if (c == nullptr && setup_.config.overflow == Overflow::block) {
            pause_accept(now + full_pause_ms);
            return;
        }
        AcceptStep step = accept_step(listen_fd, tally_, now);
        if (step.kind != AcceptStep::Kind::accepted) {
            if (c != nullptr) release(*c);
            if (step.kind == AcceptStep::Kind::again) continue;
            if (step.kind == AcceptStep::Kind::back_off) pause_accept(now + back_off_ms);
            return;
        }
        tally_.add(Tally::accepted);
        if (c == nullptr || (setup_.config.overflow == Overflow::reject && !backlog_.empty())) {
            // --overflow reject, and no room: answered 503 by the rejecter, off this thread.
            if (c != nullptr) release(*c);
            tally_.add(Tally::queue_full);
            if (!rejecter_.adopt(std::move(step.fd), true)) tally_.add(Tally::rejected);
            continue;
        }
        c->fd = std::move(step.fd);
        c->registered = c->told_drain = false;
        c->peer_closed.store(false, std::memory_order_relaxed);
        c->conn.open(now);
        note_peer(c->conn, c->fd.get());
        c->deadline_ms.store(c->conn.deadline_ms(), std::memory_order_relaxed);
        c->idle_since_ms.store(0, std::memory_order_relaxed);
        c->state.store(SharedConnection::busy, std::memory_order_release);
        open_.fetch_add(1, std::memory_order_relaxed);
        schedule(*c, now);
        hand_off(*c, Wake::ready);
        if (!backlog_.empty() && setup_.config.overflow == Overflow::block) {
            pause_accept(now + backlog_retry_ms);  // the kernel's backlog pushes back on clients
            return;
        }
    }
}

void Dispatcher::on_connection(std::uint64_t tok, std::uint32_t events) {
    SharedConnection* c = at(static_cast<std::uint32_t>(tok));
    // The connection may have closed (and its slot been reused) since the event was queued.
    if (c == nullptr || c->generation.load(std::memory_order_acquire) != static_cast<std::uint32_t>(tok >> 32)) return;
    if (c->claim_for_event(events)) hand_off(*c, Wake::ready);
}

void Dispatcher::on_wake(std::int64_t now) {
    consume(wake_);
    std::vector<SharedConnection*> again;
    {
        std::lock_guard lock(yield_mutex_);
        again.swap(yielded_);
    }
    for (SharedConnection* c : again) hand_off(*c, Wake::ready);  // to the back of the line
    if ((commands_.load(std::memory_order_acquire) & drain_flag) && !draining_.load()) start_drain();
    (void)now;
}

void Dispatcher::hand_off(SharedConnection& c, Wake why) {
    if (!backlog_.empty() || !submit(c, why)) {
        if (backlog_.empty()) tally_.add(Tally::queue_full);
        backlog_.emplace_back(&c, why);
    }
}

bool Dispatcher::submit(SharedConnection& c, Wake why) {
    pool::Job job([this, &c, why](std::stop_token) { turn(c, why); });
    const pool::Submit r = executor_.try_submit_later(std::move(job));
    if (r == pool::Submit::accepted) {
        submitted_ = true;
        return true;
    }
    if (r == pool::Submit::full) return false;
    turn(c, why);  // the executor has closed (only at the very end): run it here
    return true;
}

void Dispatcher::flush_backlog() {
    while (!backlog_.empty() && submit(*backlog_.front().first, backlog_.front().second)) backlog_.pop_front();
}

void Dispatcher::schedule(SharedConnection& c, std::int64_t now) {
    const std::int64_t due = std::min(c.deadline_ms.load(std::memory_order_relaxed), now + recheck_ms_);
    timers_.push({due, c.slot, c.generation.load(std::memory_order_relaxed)});
}

// One lazy timer per open connection. Workers move deadlines freely; the timer looks again
// at least every recheck_ms (the shortest timeout), so it is never late by more than that.
void Dispatcher::expire(std::int64_t now) {
    while (!timers_.empty() && timers_.top().due_ms <= now) {
        const DeadlineHeap::Entry e = timers_.top();
        timers_.pop();
        SharedConnection* c = at(e.slot);
        if (c == nullptr || c->generation.load(std::memory_order_acquire) != e.generation) continue;  // closed since
        if (c->deadline_ms.load(std::memory_order_relaxed) > now) {
            schedule(*c, now);  // the owner moved the deadline on
        } else if (c->claim_if_parked()) {
            timers_.push({now + recheck_ms_, e.slot, e.generation});
            hand_off(*c, Wake::timeout);
        } else {
            timers_.push({now + busy_recheck_ms, e.slot, e.generation});  // busy for a moment
        }
    }
}

// At --max-connections the oldest idle keep-alive connection makes room (as nginx does).
// A scan, but only when the table is full.
bool Dispatcher::evict_oldest_idle() {
    SharedConnection* oldest = nullptr;
    std::int64_t oldest_since = 0;
    for (std::size_t i = 0, n = created_.load(std::memory_order_relaxed); i < n; ++i) {
        SharedConnection& c = *slots_[i];
        const std::int64_t since = c.idle_since_ms.load(std::memory_order_relaxed);
        if (since == 0 || c.state.load(std::memory_order_relaxed) != SharedConnection::parked) continue;
        if (oldest == nullptr || since < oldest_since) {
            oldest = &c;
            oldest_since = since;
        }
    }
    if (oldest == nullptr || !oldest->claim_if_parked()) return false;
    tally_.add(Tally::evicted);
    hand_off(*oldest, Wake::evict);
    return true;
}

void Dispatcher::pause_accept(std::int64_t until) {
    if (accepting_) poller_.remove(setup_.listeners[0].fd.get());
    accepting_ = false;
    resume_accept_at_ = until;
}

void Dispatcher::resume_accept() {
    resume_accept_at_ = -1;
    if (accepting_ || draining_.load(std::memory_order_relaxed)) return;
    // Level-triggered: connections left in the backlog are reported again next time.
    accepting_ = poller_.add(setup_.listeners[0].fd.get(), EPOLLIN, listener_token) == 0;
}

void Dispatcher::command(std::uint32_t flag) {
    commands_.fetch_or(flag, std::memory_order_release);
    notify(wake_);
}

// Stop accepting, then let every open connection finish: busy ones answer what they have
// with Connection: close; idle keep-alive ones are closed at once.
void Dispatcher::start_drain() {
    pause_accept(-1);
    draining_.store(true);  // seq_cst: pairs with park()
    for (std::size_t i = 0, n = created_.load(std::memory_order_relaxed); i < n; ++i) {
        SharedConnection& c = *slots_[i];
        if (c.claim_if_parked()) hand_off(c, Wake::drain);
    }
}

// After a cut-off, once the dispatcher and every worker have stopped: what is still open
// (parked, on the backlog, yielded) closes now, counted timed out. Queued turns saw the
// cut-off flag and closed their connections themselves.
void Dispatcher::close_remaining() {
    for (std::size_t i = 0, n = created_.load(std::memory_order_relaxed); i < n; ++i) {
        SharedConnection& c = *slots_[i];
        if (!c.fd) continue;
        c.fd.reset();
        c.generation.fetch_add(1, std::memory_order_release);
        c.state.store(SharedConnection::closed, std::memory_order_release);
        tally_.add(Tally::timed_out);
        open_.fetch_sub(1, std::memory_order_relaxed);
    }
    backlog_.clear();
    yielded_.clear();
}

// ---- the connection table ------------------------------------------------------------

SharedConnection* Dispatcher::acquire() {
    {
        std::lock_guard lock(free_mutex_);
        if (!free_.empty()) {
            const std::uint32_t slot = free_.back();
            free_.pop_back();
            return slots_[slot].get();
        }
    }
    const std::size_t n = created_.load(std::memory_order_relaxed);
    if (n == slots_.size()) return nullptr;
    slots_[n] = std::make_unique<SharedConnection>(setup_.rules, static_cast<std::uint32_t>(n));
    created_.store(n + 1, std::memory_order_release);  // a helping worker's at() sees the slot whole
    return slots_[n].get();
}

void Dispatcher::release(SharedConnection& c) noexcept {
    std::lock_guard lock(free_mutex_);
    free_.push_back(c.slot);  // capacity reserved up front: never allocates
}

SharedConnection* Dispatcher::at(std::uint32_t slot) noexcept {
    return slot < created_.load(std::memory_order_acquire) ? slots_[slot].get() : nullptr;
}

// ---- worker threads ------------------------------------------------------------------

Tally& Dispatcher::worker_tally() {
    thread_local const Dispatcher* owner = nullptr;
    thread_local Tally* tally = nullptr;
    if (owner != this) {
        owner = this;
        tally = &setup_.stats.new_tally();
    }
    return *tally;
}

// A worker's turn: does all the I/O it can without blocking, then parks, closes or, when
// its budget is spent, goes to the back of the line.
void Dispatcher::turn(SharedConnection& c, Wake why) noexcept {
    Tally& t = worker_tally();
    c.state.store(SharedConnection::busy, std::memory_order_relaxed);  // forget pending events
    if (commands_.load(std::memory_order_acquire) & cut_flag) return;  // close_remaining() counts it
    std::int64_t now = now_ms();
    using Kind = Connection::Event::Kind;
    Connection::Action first = c.conn.action();
    if (why == Wake::timeout) first = c.conn.on({Kind::timeout, now});
    if (why == Wake::evict) first = c.conn.on({Kind::evict, now});
    for (;;) {
        if (draining_.load(std::memory_order_relaxed) && !c.told_drain) {
            c.told_drain = true;
            first = c.conn.on({Kind::drain, now});
        }
        const Turn result = drive(c.conn, c.fd.get(), first, now, c.peer_closed.load(std::memory_order_relaxed), &t);
        count_answers(c.conn, t);
        if (result == Turn::closed) return close(c, t);
        if (result == Turn::yielded) {
            t.add(Tally::yields);
            return give_back(c);
        }
        if (park(c, now)) return;
        now = now_ms();
        first = c.conn.action();
    }
}

// Gives the connection back to epoll. False when an event arrived while we held it (or a
// drain began): the caller still owns it and must look again.
bool Dispatcher::park(SharedConnection& c, std::int64_t now) noexcept {
    c.deadline_ms.store(c.conn.deadline_ms(), std::memory_order_relaxed);
    c.idle_since_ms.store(c.conn.reusable_idle() ? now : 0, std::memory_order_relaxed);
    if (!c.registered) {
        // Registered once, for both directions: edge-triggered events need no re-arming,
        // and EPOLLOUT edges come only after a write hit EAGAIN.
        if (poller_.add(c.fd.get(), connection_events, c.token()) != 0) {
            c.conn.on({.kind = Connection::Event::Kind::failed, .now_ms = now});
            close(c, worker_tally());
            return true;
        }
        c.registered = true;
    }
    if (!c.try_park()) return false;
    // If a drain began while we were busy, start_drain's sweep may have missed us (it takes
    // only parked connections). Both sides use seq_cst, so either it saw us parked or we
    // see draining here and take ourselves back.
    return !(draining_.load() && !c.told_drain && c.claim_if_parked());
}

// Where a connection of this mode ends: counted once, its slot given back.
void Dispatcher::close(SharedConnection& c, Tally& t) noexcept {
    t.count(c.conn.outcome());
    c.fd.reset();  // closing also takes it out of the epoll set
    c.registered = false;
    c.generation.fetch_add(1, std::memory_order_release);
    c.state.store(SharedConnection::closed, std::memory_order_release);
    release(c);
    if (open_.fetch_sub(1, std::memory_order_acq_rel) == 1 && draining_.load()) notify(wake_);
}

// The worker side of the epoll set. A worker about to sleep looks at the set itself (not
// blocking) and runs the turns of the connections it finds ready: in keep-alive, the
// dispatcher then wakes only when every worker sleeps, and a request costs no hand-off.
// The listener and the wake-up descriptor are level-triggered: when a look here takes
// their event, epoll reports it again and wakes the dispatcher, which handles it.
bool Dispatcher::help() noexcept {
    constexpr int help_events = 16;
    epoll_event events[help_events];
    const int n = poller_.wait(events, help_events, 0);
    bool did = false;
    for (int i = 0; i < n; ++i) {
        const std::uint64_t tok = events[i].data.u64;
        if (tok == listener_token || tok == wake_token) continue;
        SharedConnection* c = at(static_cast<std::uint32_t>(tok));
        if (c == nullptr || c->generation.load(std::memory_order_acquire) != static_cast<std::uint32_t>(tok >> 32)) continue;
        if (c->claim_for_event(events[i].events)) {
            worker_tally().add(Tally::helped);
            turn(*c, Wake::ready);
            did = true;
        }
    }
    return did;
}

void Dispatcher::give_back(SharedConnection& c) noexcept {
    {
        std::lock_guard lock(yield_mutex_);
        yielded_.push_back(&c);
    }
    notify(wake_);
}

}  // namespace okserve
