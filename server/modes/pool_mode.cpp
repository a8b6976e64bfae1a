// okserve --mode pool (the default): the design's shape. The dispatcher hands every
// runnable connection to pool::Pool, whose workers do the turns.
#include <pthread.h>
#include <sched.h>

#include "pool/pool.hpp"
#include "server/modes/dispatched_mode.hpp"

namespace okserve {

std::unique_ptr<RunningMode> make_pool_mode(const ModeSetup& s) {
    const Config& c = s.config;
    return std::make_unique<DispatchedMode>(s, [&c](Dispatcher& d) {
        pool::Options po;
        po.max_workers = c.workers;
        po.min_workers = c.min_workers;
        po.queue_size = c.queue;
        // Workers keep ordinary scheduling even when dynamic sizing starts them from the
        // dispatcher thread, whose SCHED_BATCH policy they would otherwise inherit.
        po.on_worker_start = [] {
            sched_param param{};
            ::pthread_setschedparam(::pthread_self(), SCHED_OTHER, &param);
        };
        // A worker with nothing queued serves connections that are ready itself (see
        // Dispatcher::help): keep-alive requests then skip the hand-off.
        po.on_idle = [&d] { return d.help(); };
        auto pool = std::make_shared<pool::Pool>(po);
        const std::string min = c.min_workers != 0 ? " min-workers=" + std::to_string(c.min_workers) : "";
        return Executor{
            [pool](pool::Job&& j) { return pool->try_submit(std::move(j), pool::Notify::later); },
            [pool] { pool->notify(); },
            [pool] { pool->shutdown(); },
            [pool] {
                const pool::Stats st = pool->stats();
                return Gauges{st.queued + st.in_flight, pool->capacity(), st.workers, st.in_flight};
            },
            "workers=" + std::to_string(c.workers) + min + " queue=" + std::to_string(pool->capacity()) + " (" +
                std::to_string(c.workers) + "+" + std::to_string(c.queue) + ")",
        };
    });
}

}  // namespace okserve
