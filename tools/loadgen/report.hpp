// okserve::loadgen report: owns every text the tool prints about a run: the wrk-like summary,
// the JSON object and the progress line. Pure formatting of numbers it is given.
#pragma once

#include <cstdint>
#include <string>

#include "tools/loadgen/options.hpp"
#include "tools/loadgen/run.hpp"

namespace okserve::loadgen {

// What a run is about to do, printed before it starts: "Running 3s test @ URL" and the
// threads and connections line.
std::string format_banner(const Options& options);
std::string format_summary(const Options& options, const RunResult& result);
// One JSON object on one line (with its newline); format_json_fields is its inside, without
// the braces, so --json-lines can put "type" first.
std::string format_json(const Options& options, const RunResult& result);
std::string format_json_fields(const Options& options, const RunResult& result);
// --json-lines: {"type":"progress",...} and {"type":"result",...}, each ending in a newline.
std::string format_json_progress(const ProgressSample& sample);
std::string format_json_result(const Options& options, const RunResult& result);
// -R: a warning line when the achieved rate is below 95% of the target; empty otherwise.
std::string rate_warning(const Options& options, const RunResult& result);
bool rate_fell_short(const Options& options, const RunResult& result);
// Control characters (and DEL) as \xNN, so any message stays on one line.
std::string escape_controls(std::string_view text);
std::string format_progress(std::uint64_t responses, double per_second, std::uint64_t errors, double elapsed);
// 87.3us, 1.25ms, 2.00s: as wrk prints times.
std::string format_latency(std::uint64_t ns);

}  // namespace okserve::loadgen
