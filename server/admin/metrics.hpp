// okserve admin figures: turns the summed tallies, a mode's gauges and the configuration
// into the admin listener's bodies: Prometheus text (/metrics) and JSON (/stats.json,
// /events). Pure formatting: no sockets, no threads; the admin server calls it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "server/config.hpp"
#include "server/modes/mode.hpp"
#include "server/stats.hpp"

namespace okserve::admin {

// One reading of everything, taken at one moment.
struct Reading {
    Figures figures;
    Gauges gauges;
    std::int64_t at_ns = 0;        // CLOCK_MONOTONIC
    double unix_time = 0;          // wall clock, for people
};

// What changed between two readings: rates per second and the interval's latency.
struct Interval {
    Figures delta;
    double seconds = 0;
    double rate(Tally::Field f) const noexcept {
        return seconds > 0 ? static_cast<double>(delta.get(f)) / seconds : 0;
    }
};
Interval between(const Reading& before, const Reading& after);

// Extra figures that live outside the tallies.
struct Extras {
    bool ready = true;            // false once a drain began
    double uptime_s = 0;
    std::uint64_t access_log_written = 0;
    std::uint64_t access_log_dropped = 0;
};

// Prometheus text exposition format 0.0.4.
inline constexpr std::string_view prometheus_content_type = "text/plain; version=0.0.4";
std::string prometheus(const Reading& r, const Extras& x);

// One JSON object: the mode, the configuration, totals, gauges, the last interval's rates
// and latency percentiles (p50, p90, p99, p99.9), and `load` (a JSON value, verbatim).
std::string snapshot_json(const Config& cfg, const Reading& r, const Interval& last, const Extras& x,
                          std::string_view load_json);

// Escapes a string for a JSON string literal (quotes not included).
std::string json_escape(std::string_view s);

}  // namespace okserve::admin
