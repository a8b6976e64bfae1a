// okserve::loadgen report: owns `loadgen report FILE...`: reads --hlog files, merges them and
// prints the same report a single run prints. Knows nothing of sockets or the load itself.
#pragma once

#include <span>
#include <string_view>

namespace okserve::loadgen {

// The arguments after "report"; returns the exit status (0, 1 errors in the runs, 2 bad input).
int report_main(std::span<const std::string_view> args);

}  // namespace okserve::loadgen
