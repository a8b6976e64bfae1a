// okserve --mode uring: one UringLoop (io_uring through liburing) per worker thread, each
// owning its connections from accept to close, like the reactor. When io_uring is not
// available at run time (an old kernel, kernel.io_uring_disabled, a seccomp filter such as
// Docker's default profile) or okserve was built without liburing, make_uring_mode says
// why and start-up runs --mode reactor instead.
#include "server/modes/mode.hpp"

#if OKSERVE_HAVE_URING
#include "server/modes/loops_mode.hpp"
#include "server/uring_loop.hpp"
#endif

namespace okserve {

std::unique_ptr<RunningMode> make_uring_mode(const ModeSetup& setup, std::string& why) {
#if OKSERVE_HAVE_URING
    if (!UringLoop::available(why)) return nullptr;
    return std::make_unique<LoopsMode<UringLoop>>(setup, "listeners=");
#else
    (void)setup;
    why = "built without liburing";
    return nullptr;
#endif
}

}  // namespace okserve
