// okserve probe: one GET, for container health checks without curl (Docker HEALTHCHECK,
// Kubernetes exec probes). Exit 0 on a 2xx answer within the timeout; else exit 1 and one
// line saying why (refused, timed out, the status).
#pragma once

#include "server/config.hpp"

namespace okserve {

// Runs the probe and prints its one line (stdout on success, stderr otherwise).
// Returns the exit code: 0, 1, or 2 for a URL that is not http://HOST[:PORT][/PATH].
int run_probe(const ProbeOptions& options);

}  // namespace okserve
