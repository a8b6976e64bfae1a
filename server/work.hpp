// okserve simulated work (--work SPEC): what a request costs before its answer, done by
// whichever thread runs the request (a pool worker, an event loop, a connection's thread),
// so that queueing and backpressure become visible.
//   sleep:50ms       waiting (a database call): the thread is held, the CPU is not
//   spin:200us       computing: the thread and a CPU are held
//   sleep:exp:10ms   the same, each request drawing from an exponential distribution
//   spin:exp:100us   with that mean
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace okserve {

struct WorkSpec {
    enum class Kind : std::uint8_t { none, sleep, spin };
    Kind kind = Kind::none;
    bool exponential = false;
    std::chrono::nanoseconds mean{0};

    bool active() const noexcept { return kind != Kind::none && mean.count() > 0; }
    std::string describe() const;  // "sleep:exp:10ms", or "none"
};

// Parses a SPEC; nothing (and *error set to a one-line reason) when it is malformed.
std::optional<WorkSpec> parse_work(std::string_view text, std::string* error);

// "250us", "10ms", "1.5s", "800ns": positive; nothing when malformed.
std::optional<std::chrono::nanoseconds> parse_fine_duration(std::string_view text);

// Does the work of `requests` requests, one after another, on this thread.
void perform_work(const WorkSpec& spec, std::uint64_t requests) noexcept;

}  // namespace okserve
