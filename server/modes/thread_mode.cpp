// okserve --mode thread: a thread per connection, the oldest server shape. The accepting
// thread starts one thread per connection, at most --workers at once; at the cap the
// overflow policy decides (block: stop accepting; reject: 503 from the rejecter). Each
// thread waits in poll(2) on its one socket, with the connection's deadline as timeout.
#include <algorithm>
#include <cerrno>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include <poll.h>
#include <unistd.h>

#include "pool/wait_group.hpp"
#include "server/acceptor.hpp"
#include "server/modes/mode.hpp"
#include "server/modes/rejecter.hpp"
#include "server/poller.hpp"
#include "server/socket_driver.hpp"
#include "server/sys/eventfd.hpp"

namespace okserve {

namespace {

class ThreadMode final : public RunningMode {
public:
    explicit ThreadMode(const ModeSetup& s)
        : setup_(s), rejecter_(s), tally_(s.stats.new_tally()),
          drain_(make_eventfd()), cut_(make_eventfd()), freed_(make_eventfd()) {
        // The cap: --workers threads, and never more than --max-connections.
        const std::size_t cap = std::min(s.config.workers, s.config.max_connections);
        for (std::size_t i = 0; i < cap; ++i) free_tallies_.push_back(&s.stats.new_tally());
    }

    void start() override {
        rejecter_.start(live_);
        live_.add(1);
        std::thread([this] {
            accept_loop();
            live_.done();  // the last thing this thread touches
        }).detach();
    }

    void begin_drain() override {
        notify(drain_);  // stays readable: every thread sees it
        rejecter_.begin_drain();
    }

    bool wait_until(Clock::time_point deadline) override { return live_.wait_until(deadline); }

    void cut_off() override {
        notify(cut_);
        rejecter_.cut_off();
        live_.wait();
    }

    Gauges gauges() const override {
        const std::size_t cap = std::min(setup_.config.workers, setup_.config.max_connections);
        std::lock_guard lock(tally_mutex_);
        return Gauges{0, 0, cap, cap - free_tallies_.size()};
    }

    std::string describe() const override { return "workers=" + std::to_string(setup_.config.workers) + " (threads at most)"; }

private:
    bool signalled(const Fd& efd) const noexcept {
        pollfd p{efd.get(), POLLIN, 0};
        return ::poll(&p, 1, 0) == 1;
    }

    void accept_loop() {
        const int listen_fd = setup_.listeners[0].fd.get();
        std::int64_t paused_until = -1;
        while (!signalled(drain_)) {
            const bool full = free_count() == 0;
            const bool block_at_cap = full && setup_.config.overflow == Overflow::block;
            const std::int64_t now = now_ms();
            const bool paused = paused_until > now;
            pollfd p[3] = {{drain_.get(), POLLIN, 0}, {freed_.get(), POLLIN, 0},
                           {block_at_cap || paused ? -1 : listen_fd, POLLIN, 0}};
            const int timeout = paused ? static_cast<int>(paused_until - now) : -1;
            if (::poll(p, 3, timeout) < 0 && errno != EINTR) return;
            if (p[1].revents) consume(freed_);
            if (p[2].revents) paused_until = accept_batch(listen_fd);
        }
    }

    // Returns the time until which accepting pauses (-1: no pause).
    std::int64_t accept_batch(int listen_fd) {
        for (int i = 0; i < accepts_per_wakeup; ++i) {
            const std::int64_t now = now_ms();
            if (free_count() == 0 && setup_.config.overflow == Overflow::block) {
                tally_.add(Tally::queue_full);  // at the cap: stop accepting until a thread ends
                return -1;
            }
            AcceptStep step = accept_step(listen_fd, tally_, now);
            if (step.kind == AcceptStep::Kind::empty) return -1;
            if (step.kind == AcceptStep::Kind::again) continue;
            if (step.kind == AcceptStep::Kind::back_off) return now + back_off_ms;
            tally_.add(Tally::accepted);
            Tally* t = take_tally();
            if (t == nullptr) {  // at the cap, --overflow reject
                tally_.add(Tally::queue_full);
                if (!rejecter_.loop().adopt(std::move(step.fd), true)) tally_.add(Tally::rejected);
                continue;
            }
            live_.add(1);
            try {
                std::thread([this, t, fd = std::move(step.fd)]() mutable { serve(std::move(fd), *t); }).detach();
            } catch (const std::system_error&) {
                tally_.add(Tally::errors);  // no thread to be had: the socket closes unanswered
                give_tally(t);
                live_.done();
            }
        }
        return -1;
    }

    // One connection, start to end, on its own thread.
    void serve(Fd fd, Tally& t) noexcept {
        using Kind = Connection::Event::Kind;
        Connection conn(setup_.rules);
        std::int64_t now = now_ms();
        const Connection::Action first = conn.open(now);
        note_peer(conn, fd.get());
        Turn turn = drive(conn, fd.get(), first, now, false, &t);
        bool told_drain = false, cut = false;
        for (;;) {
            count_answers(conn, t);
            if (turn == Turn::closed) break;
            if (turn == Turn::yielded) {  // nobody else to give way to: the kernel schedules
                t.add(Tally::yields);
                turn = resume(conn, fd.get(), now_ms(), false, &t);
                continue;
            }
            const short want = turn == Turn::wait_writable ? POLLOUT : POLLIN | POLLRDHUP;
            pollfd p[3] = {{fd.get(), want, 0}, {told_drain ? -1 : drain_.get(), POLLIN, 0}, {cut_.get(), POLLIN, 0}};
            const std::int64_t wait = conn.deadline_ms() - now_ms();
            const int rc = ::poll(p, 3, wait > 0 ? static_cast<int>(std::min<std::int64_t>(wait, 60'000)) : 0);
            now = now_ms();
            if (p[2].revents) {
                cut = true;
                break;
            }
            if (p[1].revents) {
                told_drain = true;
                turn = drive_event(conn, fd.get(), {Kind::drain, now}, &t);
            } else if (rc == 0) {
                turn = drive_event(conn, fd.get(), {Kind::timeout, now}, &t);
            } else if (rc > 0) {
                turn = resume(conn, fd.get(), now, (p[0].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0, &t);
            }
        }
        if (cut) t.add(Tally::timed_out);
        else t.count(conn.outcome());
        fd.reset();
        give_tally(&t);
        notify(freed_);
        live_.done();  // the last thing this thread touches
    }

    std::size_t free_count() {
        std::lock_guard lock(tally_mutex_);
        return free_tallies_.size();
    }
    // A thread's place under the cap is its tally: nullptr when all are taken.
    Tally* take_tally() {
        std::lock_guard lock(tally_mutex_);
        if (free_tallies_.empty()) return nullptr;
        Tally* t = free_tallies_.back();
        free_tallies_.pop_back();
        return t;
    }
    void give_tally(Tally* t) {
        std::lock_guard lock(tally_mutex_);
        free_tallies_.push_back(t);
    }

    ModeSetup setup_;
    Rejecter rejecter_;
    Tally& tally_;  // the accepting thread's
    Fd drain_, cut_, freed_;
    mutable std::mutex tally_mutex_;
    std::vector<Tally*> free_tallies_;  // guarded by tally_mutex_
    pool::WaitGroup live_;  // the acceptor, the rejecter and every connection thread
};

}  // namespace

std::unique_ptr<RunningMode> make_thread_mode(const ModeSetup& setup) { return std::make_unique<ThreadMode>(setup); }

}  // namespace okserve
