#include "server/server.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <stdexcept>
#include <thread>

#include <sys/signalfd.h>

#include "pool/pool.hpp"
#include "server/connection.hpp"
#include "server/dispatch/pool_mode.hpp"
#include "server/sys/error.hpp"
#include "server/sys/net.hpp"

namespace okserve {

namespace {

// SIGINT and SIGTERM are blocked in every thread (threads inherit the mask) and read
// from a signalfd by the dispatcher, so no handler ever runs on a worker mid-request.
Fd block_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (int err = pthread_sigmask(SIG_BLOCK, &set, nullptr)) throw SysError("start", "pthread_sigmask", err);
    Fd fd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!fd) throw SysError("start", "signalfd", errno);
    // A write to a closed socket returns EPIPE (we also pass MSG_NOSIGNAL); a closed
    // stdout must not kill the server either.
    std::signal(SIGPIPE, SIG_IGN);
    return fd;
}

std::size_t default_max_connections(std::uint64_t nofile, std::size_t workers) {
    // Keep descriptors for the listener, epoll, signalfd, stdio and a margin.
    const std::uint64_t reserve = 32 + workers;
    const std::uint64_t n = nofile > reserve + 16 ? nofile - reserve : 16;
    return static_cast<std::size_t>(std::min<std::uint64_t>(n, 1u << 20));
}

}  // namespace

int serve(const Config& cfg_in) {
    Config cfg = cfg_in;
    if (cfg.workers == 0) cfg.workers = std::max(1u, std::thread::hardware_concurrency());
    const NofileLimit nofile = raise_nofile_limit();
    if (cfg.max_connections == 0) cfg.max_connections = default_max_connections(nofile.after, cfg.workers);

    ServerContext ctx(cfg, cfg.max_connections);  // builds the answers: may throw UsageError
    Listener listener = open_listener(cfg.host, cfg.port, cfg.backlog);
    Fd signals = block_signals();

    pool::Options po;
    po.max_workers = cfg.workers;
    po.min_workers = cfg.min_workers;
    po.queue_size = cfg.queue;
    // Workers keep ordinary scheduling even when dynamic sizing starts them from the
    // dispatcher thread, whose policy they would otherwise inherit.
    po.on_worker_start = [] { set_thread_batch(false); };
    pool::Pool pool(po);
    PoolMode mode(ctx, listener, pool, std::move(signals));

    const std::string min_workers =
        cfg.min_workers != 0 ? " min-workers=" + std::to_string(cfg.min_workers) : std::string();
    std::printf("okserve: mode=%s listen=%s workers=%zu%s queue=%zu (%zu+%zu) backlog=%d nofile=%llu%s max-connections=%zu\n",
                to_string(cfg.mode), listener.address.c_str(), cfg.workers, min_workers.c_str(), pool.capacity(), cfg.workers,
                cfg.queue, listener.backlog, static_cast<unsigned long long>(nofile.after),
                nofile.after != nofile.before ? (" (raised from " + std::to_string(nofile.before) + ")").c_str() : "",
                cfg.max_connections);
    std::fflush(stdout);

    const std::size_t still_open = mode.run();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    pool.shutdown_until(deadline);
    // Connections the drain timeout cut off are counted as timed out, so the books balance.
    ctx.stats.timed_out.fetch_add(still_open, std::memory_order_relaxed);
    std::printf("okserve: shutdown: %s\n", ctx.stats.summary().c_str());
    std::fflush(stdout);
    if (still_open != 0) {
        // Workers may still hold them; leave without tearing down shared state under them.
        std::fflush(stderr);
        ::_exit(0);
    }
    return 0;
}

}  // namespace okserve
