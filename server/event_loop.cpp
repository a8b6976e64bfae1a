#include "server/event_loop.hpp"

#include <cerrno>

#include <unistd.h>

#include "server/acceptor.hpp"
#include "server/sys/error.hpp"
#include "server/sys/eventfd.hpp"

namespace okserve {

namespace {
constexpr int max_events = 256;
constexpr std::int64_t full_recheck_ms = 10;  // --max-connections reached in another loop
constexpr std::uint32_t connection_events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
}  // namespace

EventLoop::EventLoop(const ConnectionRules& rules, Tally& tally, Options options)
    : rules_(rules), tally_(tally), options_(options), wake_(make_eventfd()) {
    if (int err = poller_.add(wake_.get(), EPOLLIN, wake_token)) throw SysError("start", "epoll_ctl", err);
    if (int err = poller_.add(alarm_.fd(), EPOLLIN, alarm_token)) throw SysError("start", "epoll_ctl", err);
    free_.reserve(64);
}

void EventLoop::run() {
    if (options_.listen_fd >= 0) resume_accept();
    epoll_event events[max_events];
    std::int64_t now = now_ms();
    for (;;) {
        busy_.store(false, std::memory_order_relaxed);
        const int n = poller_.wait(events, max_events, wait_timeout());
        busy_.store(true, std::memory_order_relaxed);
        now = now_ms();
        for (int i = 0; i < n; ++i) {
            const std::uint64_t tok = events[i].data.u64;
            if (tok == listener_token) accept_batch(now);
            else if (tok == wake_token) take_commands(now);
            else if (tok == alarm_token) alarm_.rang();  // expire() below finds what is due
            else on_event(tok, events[i].events, now);
        }
        if (commands_.load(std::memory_order_acquire) & cut_flag) {
            close_all();
            return;
        }
        run_ready(now);
        expire(now);
        if (resume_accept_at_ >= 0 && now >= resume_accept_at_) resume_accept();
        if (draining_ && open_count() == 0) {
            std::lock_guard lock(inbox_mutex_);
            if (inbox_.empty()) return;
        }
    }
}

// Turns cut short go on at once; otherwise the wait has no timeout: the alarm rings by the
// earliest deadline (and costs a system call only when that deadline moved earlier).
int EventLoop::wait_timeout() {
    if (!ready_.empty()) return 0;
    alarm_.ring_by(next_due());
    return -1;
}

std::int64_t EventLoop::next_due() const noexcept {
    std::int64_t due = resume_accept_at_;
    for (const TimerList& t : timers_) {
        const std::int64_t d = t.next_due();
        if (d >= 0 && (due < 0 || d < due)) due = d;
    }
    return due;
}

// ---- new connections ----------------------------------------------------------------

void EventLoop::accept_batch(std::int64_t now) {
    for (int i = 0; i < accepts_per_wakeup && accepting_; ++i) {
        const bool room = has_room() || make_room(now);
        if (!room && !options_.reject_when_full) {
            // Until one of ours closes; when the limit is shared, room may also free up in
            // another loop, so look again soon.
            pause_accept(options_.shared_open ? now + full_recheck_ms : -1);
            return;
        }
        AcceptStep step = accept_step(options_.listen_fd, tally_, now);
        switch (step.kind) {
            case AcceptStep::Kind::accepted: break;
            case AcceptStep::Kind::empty: return;
            case AcceptStep::Kind::again: continue;
            case AcceptStep::Kind::back_off: pause_accept(now + back_off_ms); return;
        }
        tally_.add(Tally::accepted);
        if (room) {
            start(std::move(step.fd), false, now);
            continue;
        }
        tally_.add(Tally::queue_full);
        if (options_.rejecter == nullptr || !options_.rejecter->adopt(std::move(step.fd), true)) {
            tally_.add(Tally::rejected);  // no room even to say so: the socket just closes
        }
    }
}

// At the limit, the oldest idle keep-alive connection makes room (as nginx does).
bool EventLoop::make_room(std::int64_t now) {
    TimerLink* oldest = timers_[static_cast<std::size_t>(Connection::Timer::keepalive)].front();
    if (oldest == nullptr) return false;
    Slot& s = static_cast<Slot&>(*oldest);
    tally_.add(Tally::evicted);
    after_turn(s, drive_event(s.conn, s.fd.get(), {Connection::Event::Kind::evict, now}, &tally_), now);
    return has_room();
}

bool EventLoop::has_room() const noexcept {
    const std::size_t open = options_.shared_open ? options_.shared_open->load(std::memory_order_relaxed) : open_count();
    return open < options_.max_connections;
}

// Only this loop's thread changes open_; other threads read it.
void EventLoop::count_open(int delta) noexcept {
    open_.store(open_count() + static_cast<std::size_t>(delta), std::memory_order_relaxed);
    if (options_.shared_open) options_.shared_open->fetch_add(static_cast<std::size_t>(delta), std::memory_order_relaxed);
}

void EventLoop::pause_accept(std::int64_t until) {
    if (accepting_) poller_.remove(options_.listen_fd);
    accepting_ = false;
    resume_accept_at_ = until;
}

void EventLoop::resume_accept() {
    resume_accept_at_ = -1;
    if (accepting_ || draining_ || options_.listen_fd < 0) return;
    // Level-triggered: connections left in the backlog are reported again next time.
    const std::uint32_t ev = EPOLLIN | (options_.exclusive ? EPOLLEXCLUSIVE : 0u);
    accepting_ = poller_.add(options_.listen_fd, ev, listener_token) == 0;
}

bool EventLoop::adopt(Fd fd, bool reject) {
    {
        std::lock_guard lock(inbox_mutex_);
        if (commands_.load(std::memory_order_relaxed) != 0) return false;
        if (open_count() + inbox_.size() >= options_.max_connections) return false;
        inbox_.emplace_back(std::move(fd), reject);
    }
    notify(wake_);
    return true;
}

void EventLoop::begin_drain() {
    {
        std::lock_guard lock(inbox_mutex_);  // adopt() sees the flag, or we see its socket
        commands_.fetch_or(drain_flag, std::memory_order_release);
    }
    notify(wake_);
}

void EventLoop::cut_off() {
    commands_.fetch_or(cut_flag, std::memory_order_release);
    notify(wake_);
}

void EventLoop::take_commands(std::int64_t now) {
    consume(wake_);
    std::vector<std::pair<Fd, bool>> adopted;
    {
        std::lock_guard lock(inbox_mutex_);
        adopted.swap(inbox_);
    }
    for (auto& [fd, reject] : adopted) start(std::move(fd), reject, now);
    if ((commands_.load(std::memory_order_acquire) & drain_flag) && !draining_) drain_all(now);
}

// ---- turns --------------------------------------------------------------------------

void EventLoop::start(Fd fd, bool reject, std::int64_t now) {
    std::uint32_t index;
    if (!free_.empty()) {
        index = free_.back();
        free_.pop_back();
    } else {
        index = static_cast<std::uint32_t>(slots_.size());
        slots_.push_back(std::make_unique<Slot>(rules_));
        slots_.back()->index = index;
    }
    Slot& s = *slots_[index];
    s.fd = std::move(fd);
    s.peer_closed = s.registered = s.ready = false;
    count_open(1);
    const Connection::Action first = reject ? s.conn.reject(now) : s.conn.open(now);
    note_peer(s.conn, s.fd.get());
    if (draining_) s.conn.on({Connection::Event::Kind::drain, now});
    // The request has usually arrived by the time the connection is accepted: read it now
    // rather than after another epoll_wait.
    after_turn(s, drive(s.conn, s.fd.get(), first, now, false, &tally_), now);
}

void EventLoop::on_event(std::uint64_t tok, std::uint32_t events, std::int64_t now) {
    Slot* s = slot_for(tok);
    if (s == nullptr) return;  // closed since the event was queued
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) s->peer_closed = true;
    if (s->ready) return;  // its turn comes from the ready list
    after_turn(*s, resume(s->conn, s->fd.get(), now, s->peer_closed, &tally_), now);
}

void EventLoop::after_turn(Slot& s, Turn t, std::int64_t now) {
    count_answers(s.conn, tally_);
    if (t == Turn::closed) {
        close_slot(s);
        return;
    }
    if (!s.registered) {
        // Registered once, for both directions: edge-triggered events need no re-arming,
        // and EPOLLOUT edges come only after a write hit EAGAIN.
        if (poller_.add(s.fd.get(), connection_events, token(s)) != 0) {
            s.conn.on({.kind = Connection::Event::Kind::failed, .now_ms = now});
            close_slot(s);
            return;
        }
        s.registered = true;
    }
    if (t == Turn::yielded && !s.ready) {
        s.ready = true;
        ready_.push_back(s.index);
        tally_.add(Tally::yields);
    }
    set_timer(s);
}

// Each timer kind has one duration, so a list per kind stays sorted by deadline.
void EventLoop::set_timer(Slot& s) {
    if (s.conn.state() == Connection::State::closed) return;
    const auto kind = static_cast<std::uint8_t>(s.conn.timer());
    const std::int64_t due = s.conn.deadline_ms();
    if (s.linked() && s.timer_list == kind && s.due_ms == due) return;
    timers_[kind].push_back(s, due);
    s.timer_list = kind;
}

void EventLoop::close_slot(Slot& s) {
    TimerList::unlink(s);
    tally_.count(s.conn.outcome());
    s.fd.reset();  // closing also takes it out of the epoll set
    s.registered = s.ready = false;
    ++s.generation;
    free_.push_back(s.index);
    count_open(-1);
    if (!accepting_ && resume_accept_at_ < 0 && !draining_) resume_accept();
}

void EventLoop::run_ready(std::int64_t now) {
    if (ready_.empty()) return;
    std::vector<std::uint32_t> turn;
    turn.swap(ready_);
    for (const std::uint32_t index : turn) {
        Slot& s = *slots_[index];
        if (!s.ready) continue;
        s.ready = false;
        after_turn(s, resume(s.conn, s.fd.get(), now, s.peer_closed, &tally_), now);
    }
}

void EventLoop::expire(std::int64_t now) {
    for (TimerList& list : timers_) {
        for (TimerLink* t = list.front(); t != nullptr && t->due_ms <= now; t = list.front()) {
            Slot& s = static_cast<Slot&>(*t);
            TimerList::unlink(s);
            after_turn(s, drive_event(s.conn, s.fd.get(), {Connection::Event::Kind::timeout, now}, &tally_), now);
        }
    }
}

// ---- shutdown -----------------------------------------------------------------------

void EventLoop::drain_all(std::int64_t now) {
    draining_ = true;
    pause_accept(-1);
    for (auto& p : slots_) {
        Slot& s = *p;
        if (!s.fd) continue;
        after_turn(s, drive_event(s.conn, s.fd.get(), {Connection::Event::Kind::drain, now}, &tally_), now);
    }
}

// Connections the drain timeout cut off are counted as timed out, so the books balance.
void EventLoop::close_all() {
    for (auto& p : slots_) {
        Slot& s = *p;
        if (!s.fd) continue;
        TimerList::unlink(s);
        tally_.add(Tally::timed_out);
        s.fd.reset();
        ++s.generation;
        count_open(-1);
    }
    std::lock_guard lock(inbox_mutex_);
    tally_.add(Tally::timed_out, inbox_.size());
    inbox_.clear();
}

EventLoop::Slot* EventLoop::slot_for(std::uint64_t tok) noexcept {
    const auto index = static_cast<std::uint32_t>(tok);
    if (index >= slots_.size()) return nullptr;
    Slot* s = slots_[index].get();
    return s->generation == static_cast<std::uint32_t>(tok >> 32) && s->fd ? s : nullptr;
}

}  // namespace okserve
