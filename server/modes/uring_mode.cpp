// okserve --mode uring: to be io_uring through liburing (multishot accept and receive,
// batched submission, a ring per thread). Not written yet: make_uring_mode says so, and
// start-up runs --mode reactor instead, with one line on stderr.
#include "server/modes/mode.hpp"

namespace okserve {

std::unique_ptr<RunningMode> make_uring_mode(const ModeSetup&, std::string& why) {
    why = "this build has no io_uring mode yet";
    return nullptr;
}

}  // namespace okserve
