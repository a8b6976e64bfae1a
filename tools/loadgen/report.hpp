// okserve::loadgen report: owns every text the tool prints about a run: the wrk-like summary,
// the JSON object and the progress line. Pure formatting of numbers it is given.
#pragma once

#include <cstdint>
#include <string>

#include "tools/loadgen/options.hpp"
#include "tools/loadgen/run.hpp"

namespace okserve::loadgen {

std::string format_summary(const Options& options, const RunResult& result);
std::string format_json(const Options& options, const RunResult& result);
std::string format_progress(std::uint64_t responses, double per_second, std::uint64_t errors, double elapsed);
// 87.3us, 1.25ms, 2.00s: as wrk prints times.
std::string format_latency(std::uint64_t ns);

}  // namespace okserve::loadgen
