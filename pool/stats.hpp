// pool/stats.hpp - Options that shape a Pool and the Stats snapshot it reports.
// Plain data only; knows nothing of how the pool schedules or who reads the numbers.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace okserve::pool {

struct Options {
    std::size_t max_workers = 1;
    std::size_t min_workers = 0;  // 0: fixed size, max_workers threads. Else grow/shrink in between.
    std::size_t queue_size = 64;  // normal-lane capacity is max_workers + queue_size (see Pool)
    std::size_t priority_size = 16;
    std::chrono::milliseconds idle_timeout{2000};  // dynamic sizing only: idle time before retiring
    // Runs first thing in every worker thread (e.g. to set its scheduling policy: a thread
    // started later, by dynamic sizing, inherits that of whichever thread submitted).
    // It must not throw.
    std::function<void()> on_worker_start = {};
    // Called by a worker that found both lanes empty, before it goes to sleep: a chance
    // to find work the pool does not queue (a server's worker looks for connections that
    // are ready). True if it did some, and the worker looks at the lanes again; false and
    // it sleeps as usual. It must return soon and must not throw.
    std::function<bool()> on_idle = {};
};

// A snapshot read without stopping any worker: each field is read once, so while jobs run
// two fields may be a moment apart; on a quiet or shut-down pool all are exact.
// Accounting identity once the pool is shut down:
//   accepted = completed + failed + dropped (+ queued + in_flight while it still runs)
struct Stats {
    std::size_t workers = 0;  // live worker threads now
    std::size_t queued = 0;   // waiting in either lane
    std::size_t queued_priority = 0;
    std::size_t in_flight = 0;              // running now, one per busy worker
    std::size_t max_depth = 0;              // highest `queued` seen (sampled: see docs/pool.md)
    std::size_t waiting_submitters = 0;     // threads blocked in submit()/submit_until() for room
    std::uint64_t accepted = 0;             // submissions taken, both lanes
    std::uint64_t completed = 0;            // ran and succeeded
    std::uint64_t failed = 0;               // ran and threw or returned false
    std::uint64_t rejected = 0;             // refused because full: `full` and `timed_out` results
    std::uint64_t refused_closed = 0;       // refused because shutdown had begun
    std::uint64_t dropped = 0;              // queued jobs destroyed unrun by cancel()
    std::vector<std::uint64_t> per_worker;  // jobs finished by each worker slot (max_workers slots)
};

}  // namespace okserve::pool
