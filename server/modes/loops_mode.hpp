// okserve loops mode: the RunningMode around one loop per worker thread (reactor's
// EventLoop, uring's UringLoop), each owning its connections from accept to close, plus a
// rejecter. One --max-connections count is shared by all loops.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "pool/wait_group.hpp"
#include "server/event_loop.hpp"
#include "server/modes/mode.hpp"
#include "server/modes/rejecter.hpp"

namespace okserve {

template <class Loop>
class LoopsMode final : public RunningMode {
public:
    LoopsMode(const ModeSetup& s, const char* listeners_note) : setup_(s), note_(listeners_note) {
        const Config& c = s.config;
        rejecter_ = std::make_unique<Rejecter>(s);
        for (std::size_t i = 0; i < c.workers; ++i) {
            const bool shared = s.listeners.size() == 1;
            LoopOptions o;
            o.listen_fd = s.listeners[shared ? 0 : i].fd.get();
            o.exclusive = shared && c.workers > 1;
            o.max_connections = c.max_connections;  // one limit for all loops
            o.shared_open = &open_;
            o.reject_when_full = c.overflow == Overflow::reject;
            o.rejecter = &rejecter_->loop();
            loops_.push_back(std::make_unique<Loop>(s.rules, s.stats.new_tally(), o));
        }
    }

    // Loops run on detached threads that check out of live_ as the last thing they do:
    // waiting on live_ is how the mode knows they have all stopped.
    void start() override {
        rejecter_->start(live_);
        for (auto& loop : loops_) {
            live_.add(1);
            std::thread([this, l = loop.get()] {
                l->run();
                live_.done();
            }).detach();
        }
    }

    void begin_drain() override {
        for (auto& loop : loops_) loop->begin_drain();
        rejecter_->begin_drain();
    }

    bool wait_until(Clock::time_point deadline) override { return live_.wait_until(deadline); }

    void cut_off() override {
        for (auto& loop : loops_) loop->cut_off();
        rejecter_->cut_off();
        live_.wait();
    }

    Gauges gauges() const override {
        Gauges g;
        g.workers = loops_.size();
        for (const auto& loop : loops_) g.workers_busy += loop->busy() ? 1 : 0;
        return g;
    }

    std::string describe() const override {
        return "workers=" + std::to_string(loops_.size()) + " " + note_ +
               (setup_.listeners.size() == 1 ? "shared" : "reuseport");
    }

private:
    ModeSetup setup_;
    std::string note_;
    std::unique_ptr<Rejecter> rejecter_;
    std::vector<std::unique_ptr<Loop>> loops_;
    pool::WaitGroup live_;              // one count per running loop, and the rejecter
    std::atomic<std::size_t> open_{0};  // connections open in all loops
};

}  // namespace okserve
