// okserve accept step: takes one connection from a listener and says what accept4's
// result means for the caller: use it, stop for now, try again, or back off. Shared by
// every mode. Knows nothing of HTTP or of what the caller does with the socket.
#pragma once

#include <cstdint>

#include "server/stats.hpp"
#include "server/sys/fd.hpp"

namespace okserve {

struct AcceptStep {
    enum class Kind : std::uint8_t {
        accepted,  // fd holds a new non-blocking socket
        empty,     // the backlog is empty (EAGAIN)
        again,     // that one was lost (ECONNABORTED, EPROTO, EPERM): take the next
        back_off,  // out of descriptors or memory: stop accepting for back_off_ms
    };
    Kind kind;
    Fd fd;
    int err = 0;
};

inline constexpr std::int64_t back_off_ms = 100;  // EMFILE: wait for descriptors, never spin
// New connections taken per wake-up, so a flood of connects can't starve the connections
// already open (redis caps this the same way).
inline constexpr int accepts_per_wakeup = 64;

// Takes one connection. On back_off it counts an accept error in `tally` and prints at
// most one line a second per thread ("okserve: accept4: Too many open files (3 times)").
AcceptStep accept_step(int listen_fd, Tally& tally, std::int64_t now_ms) noexcept;

}  // namespace okserve
