#include "server/dispatch/pool_mode.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <unistd.h>

#include <pthread.h>
#include <sched.h>
#include <sys/signalfd.h>

#include "server/sys/error.hpp"

namespace okserve {

namespace {
constexpr int max_events = 256;
// New connections taken per wake-up, so a flood of connects can't starve the
// connections already open (redis caps this the same way).
constexpr int accepts_per_wakeup = 64;
constexpr std::int64_t emfile_pause_ms = 100;  // out of descriptors: wait, don't spin
constexpr std::int64_t full_pause_ms = 10;     // --max-connections reached
constexpr std::int64_t busy_recheck_ms = 10;
}  // namespace

PoolMode::PoolMode(ServerContext& ctx, Listener& listener, pool::Pool& pool, Fd signal_fd)
    : ctx_(ctx), listener_(listener), pool_(pool), signal_fd_(std::move(signal_fd)) {
    // The listener is level-triggered: connections left in the backlog (after a pause,
    // or past accepts_per_wakeup) are reported again on the next wait.
    if (int err = ctx_.poller.add(listener_.fd.get(), EPOLLIN, listener_token)) {
        throw SysError("listen " + listener_.address, "epoll_ctl", err);
    }
    if (int err = ctx_.poller.add(signal_fd_.get(), EPOLLIN, signal_token)) {
        throw SysError("signals", "epoll_ctl", err);
    }
}

int set_thread_batch(bool batch) noexcept {
    sched_param param{};
    return ::pthread_setschedparam(::pthread_self(), batch ? SCHED_BATCH : SCHED_OTHER, &param);
}

std::size_t PoolMode::run() {
    // The dispatcher only hands work over. Under ordinary scheduling, every packet that
    // arrives wakes it and it preempts the worker sharing its core; SCHED_BATCH turns off
    // that wake-up preemption, so it runs when a worker sleeps and finds a whole batch of
    // events ready. README.md "Performance" has the measured difference.
    if (ctx_.config.batch_dispatcher) {
        if (int err = set_thread_batch(true)) {
            std::fprintf(stderr, "okserve: pthread_setschedparam(SCHED_BATCH): %s; using normal scheduling\n",
                         std::string(errno_text(err)).c_str());
        }
    }
    epoll_event events[max_events];
    for (;;) {
        const int n = ctx_.poller.wait(events, max_events, wait_timeout(now_ms()));
        const std::int64_t now = now_ms();
        for (int i = 0; i < n; ++i) {
            const std::uint64_t token = events[i].data.u64;
            if (token == listener_token) {
                on_listener(now);
            } else if (token == signal_token) {
                on_signal();
            } else {
                on_connection(token, events[i].events);
            }
        }
        expire(now);
        resume_accept_if_due(now);
        if (draining_) {
            if (ctx_.live.count() == 0) return 0;
            if (now >= drain_deadline_) return static_cast<std::size_t>(ctx_.live.count());
        }
    }
}

int PoolMode::wait_timeout(std::int64_t now) const {
    std::int64_t due = -1;
    if (!timers_.empty()) due = timers_.top().due_ms;
    if (!accepting_ && !draining_ && (due < 0 || resume_accept_at_ < due)) due = resume_accept_at_;
    // While draining, look at the count of open connections often.
    if (draining_ && (due < 0 || now + 20 < due)) due = now + 20;
    if (due < 0) return -1;
    return static_cast<int>(std::clamp<std::int64_t>(due - now, 0, 60'000));
}

void PoolMode::on_listener(std::int64_t now) {
    for (int i = 0; i < accepts_per_wakeup && accepting_; ++i) {
        Connection* c = ctx_.table->acquire();
        if (c == nullptr) {
            pause_accept(now, full_pause_ms, 0);
            return;
        }
        Accepted a = accept_one(listener_.fd.get());
        if (!a.fd) {
            ctx_.table->release(c);
            if (a.err == EAGAIN || a.err == EWOULDBLOCK) return;
            if (a.err == ECONNABORTED || a.err == EPROTO || a.err == EPERM) continue;
            // EMFILE, ENFILE, ENOBUFS, ENOMEM: wait for descriptors or memory to free up.
            pause_accept(now, emfile_pause_ms, a.err);
            return;
        }
        ctx_.stats.accepted.fetch_add(1, std::memory_order_relaxed);
        ctx_.live.add(1);
        c->open(std::move(a.fd));
        schedule(c, now);
        if (ctx_.config.overflow == Overflow::reject) {
            pool::Job job([c](std::stop_token) { c->run(Connection::Wake::ready); });
            if (pool_.try_submit(std::move(job)) != pool::Submit::accepted) {
                ctx_.stats.queue_full.fetch_add(1, std::memory_order_relaxed);
                c->reject();
            }
            continue;
        }
        hand_off(c, Connection::Wake::ready);
    }
}

// Blocking submit: while the queue is full the dispatcher waits here, so it stops
// accepting and the kernel's backlog pushes back on clients (--overflow block).
void PoolMode::hand_off(Connection* c, Connection::Wake why) {
    pool::Job job([c, why](std::stop_token) { c->run(why); });
    pool::Submit result = pool_.try_submit(std::move(job));
    if (result == pool::Submit::full) {
        ctx_.stats.queue_full.fetch_add(1, std::memory_order_relaxed);
        result = pool_.submit(std::move(job));  // the job was not moved from: still ours
    }
    if (result != pool::Submit::accepted) c->run(why);
}

void PoolMode::on_connection(std::uint64_t token, std::uint32_t events) {
    const auto slot = static_cast<std::uint32_t>(token);
    const auto generation = static_cast<std::uint32_t>(token >> 32);
    Connection* c = ctx_.table->at(slot);
    // The connection may have closed (and its slot been reused) since the event was queued.
    if (c == nullptr || c->generation() != generation) return;
    if (c->claim_for_event(events)) hand_off(c, Connection::Wake::ready);
}

void PoolMode::schedule(Connection* c, std::int64_t now) {
    const std::int64_t due = std::min(c->deadline_ms(), now + ctx_.recheck_ms);
    timers_.push({due, c->slot(), c->generation()});
}

// One lazy timer per open connection. A connection's owner moves its deadline freely;
// the timer looks again at least every recheck_ms (the shortest timeout), so it is
// never late by more than that, and costs O(log n) per look.
void PoolMode::expire(std::int64_t now) {
    while (!timers_.empty() && timers_.top().due_ms <= now) {
        const DeadlineHeap::Entry e = timers_.top();
        timers_.pop();
        Connection* c = ctx_.table->at(e.slot);
        if (c == nullptr || c->generation() != e.generation) continue;  // closed since
        if (c->deadline_ms() > now) {
            schedule(c, now);  // the owner moved the deadline on
        } else if (c->claim_if_parked()) {
            timers_.push({now + ctx_.recheck_ms, e.slot, e.generation});
            hand_off(c, Connection::Wake::timeout);
        } else {
            // Busy for a moment (a worker holds it): look again very soon.
            timers_.push({now + busy_recheck_ms, e.slot, e.generation});
        }
    }
}

void PoolMode::pause_accept(std::int64_t now, std::int64_t for_ms, int err) {
    accepting_ = false;
    resume_accept_at_ = now + for_ms;
    ctx_.poller.modify(listener_.fd.get(), 0, listener_token);
    if (err == 0) return;
    ctx_.stats.accept_errors.fetch_add(1, std::memory_order_relaxed);
    ++accept_errors_since_log_;
    if (now - last_accept_log_ >= 1000) {  // at most one line a second
        std::fprintf(stderr, "okserve: accept4: %s (%llu times); pausing accept for %lldms\n",
                     std::string(errno_text(err)).c_str(),
                     static_cast<unsigned long long>(accept_errors_since_log_),
                     static_cast<long long>(for_ms));
        last_accept_log_ = now;
        accept_errors_since_log_ = 0;
    }
}

void PoolMode::resume_accept_if_due(std::int64_t now) {
    if (accepting_ || draining_ || now < resume_accept_at_) return;
    accepting_ = true;
    ctx_.poller.modify(listener_.fd.get(), EPOLLIN, listener_token);
}

void PoolMode::on_signal() {
    signalfd_siginfo info{};
    while (::read(signal_fd_.get(), &info, sizeof info) == sizeof info) {
        if (draining_) {
            static const char msg[] = "okserve: second signal: exiting now\n";
            [[maybe_unused]] ssize_t ignored = ::write(2, msg, sizeof msg - 1);
            ::_exit(1);
        }
        begin_drain();
    }
}

// Close the listener first, then let every open connection finish: busy ones answer what
// they have with Connection: close; idle keep-alive ones are closed at once.
void PoolMode::begin_drain() {
    draining_ = true;
    ctx_.draining.store(true);  // seq_cst: pairs with Connection::park()
    drain_deadline_ = now_ms() + ctx_.config.drain_timeout.count();
    ctx_.poller.remove(listener_.fd.get());
    listener_.fd.reset();
    for (std::size_t slot = 0; slot < ctx_.table->created(); ++slot) {
        Connection* c = ctx_.table->at(static_cast<std::uint32_t>(slot));
        if (c != nullptr && c->claim_if_parked()) hand_off(c, Connection::Wake::drain);
    }
}

}  // namespace okserve
