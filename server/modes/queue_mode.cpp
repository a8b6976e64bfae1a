// okserve --mode queue: the dispatcher and one bounded queue (one mutex, one condition
// variable) with a single consumer thread: the simplest hand-off there is, to compare the
// pool against. --workers must be 1.
#include "pool/serial_queue.hpp"
#include "server/modes/dispatched_mode.hpp"

namespace okserve {

std::unique_ptr<RunningMode> make_queue_mode(const ModeSetup& s) {
    const Config& c = s.config;
    return std::make_unique<DispatchedMode>(s, [&c](Dispatcher&) {
        auto queue = std::make_shared<pool::SerialQueue>(c.queue);
        return Executor{
            [queue](pool::Job&& j) { return queue->try_submit(std::move(j), pool::Notify::later); },
            [queue] { queue->notify(); },
            [queue] { queue->shutdown(); },
            [queue] {
                const std::size_t busy = queue->busy() ? 1 : 0;
                return Gauges{queue->size() + busy, queue->capacity(), 1, busy};
            },
            "workers=1 queue=" + std::to_string(queue->capacity()),
        };
    });
}

}  // namespace okserve
