// okserve dispatched modes (pool, queue): the Mode around a Dispatcher thread, an executor
// and a rejecter. pool_mode.cpp and queue_mode.cpp differ only in the executor they give.
#pragma once

#include <functional>
#include <thread>

#include "server/modes/dispatcher.hpp"
#include "server/modes/mode.hpp"
#include "server/modes/rejecter.hpp"

namespace okserve {

class DispatchedMode final : public RunningMode {
public:
    DispatchedMode(const ModeSetup& s, const std::function<Executor(Dispatcher&)>& make_executor)
        : rejecter_(s), dispatcher_(s, rejecter_.loop()) {
        dispatcher_.set_executor(make_executor(dispatcher_));
    }

    ~DispatchedMode() override { stop_executor(); }

    void start() override {
        rejecter_.start(live_);
        live_.add(1);
        std::thread([this] {
            dispatcher_.run();
            live_.done();  // the last thing this thread touches
        }).detach();
    }

    void begin_drain() override {
        dispatcher_.begin_drain();
        rejecter_.begin_drain();
    }

    // The dispatcher and the rejecter return once their connections are closed; then the
    // executor's threads are joined (their work is done by then).
    bool wait_until(Clock::time_point deadline) override {
        if (!live_.wait_until(deadline)) return false;
        stop_executor();
        return true;
    }

    void cut_off() override {
        dispatcher_.cut_off();
        rejecter_.cut_off();
        live_.wait();
        stop_executor();
        dispatcher_.close_remaining();
    }

    Gauges gauges() const override { return dispatcher_.executor().gauges(); }

    std::string describe() const override { return dispatcher_.executor().description; }

private:
    // Runs what is queued and joins the executor's threads. Safe to call twice.
    void stop_executor() {
        if (dispatcher_.executor().shutdown) dispatcher_.executor().shutdown();
    }

    Rejecter rejecter_;
    Dispatcher dispatcher_;
    pool::WaitGroup live_;  // the dispatcher and the rejecter, while they run
};

}  // namespace okserve
