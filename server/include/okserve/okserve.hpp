// okserve as a library: a minimal, fast HTTP/1.1 server that gives every request the same
// answer, running on threads of your own process. Link with `pkg-config --libs okserve`.
//
//   okserve::Server server({"--port", "0", "--body", "hello\n"});
//   server.start();                        // serving on 127.0.0.1:server.port()
//   ...
//   server.stop();                         // the drain SIGTERM does: answers in flight finish
//
// Options are okserve's command-line flags (`okserve --help`, README.md), so everything the
// binary can do the library can too. Several servers may run side by side in one process;
// a stopped server may be started again. The library installs no signal handler and never
// exits the process: failures are thrown as okserve::Error.
//
// Listening: "--unix", PATH serves a Unix socket (its file is removed at stop); "--fd", N
// serves a listening socket you opened (okserve works on a duplicate; N stays yours, made
// close-on-exec). Systemd's LISTEN_FDS is left to the host process: pass the fd with --fd.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace okserve {

class Error : public std::runtime_error {
public:
    enum class Kind {
        usage,   // a bad option or value (the binary exits 2)
        system,  // the system refused: a port in use, an address not here (the binary exits 1)
    };
    Error(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
    Kind kind() const noexcept { return kind_; }

private:
    Kind kind_;
};

// What a server has done so far. accepted = answered + rejected + timed_out +
// closed_by_client + errors + open.
struct Counters {
    std::uint64_t accepted = 0;
    std::uint64_t answered = 0;          // connections that ended after at least one answer
    std::uint64_t rejected = 0;          // 503 for lack of room
    std::uint64_t timed_out = 0;
    std::uint64_t closed_by_client = 0;  // before any answer
    std::uint64_t errors = 0;            // malformed requests, socket errors
    std::uint64_t open = 0;              // connections open now
    std::uint64_t requests = 0;          // answers sent
    std::uint64_t rate_limited = 0;      // of which 429 (--rate-limit)
};

class Server {
public:
    // Checks the options (throws Error::Kind::usage); opens nothing yet.
    explicit Server(std::vector<std::string> options = {});
    Server(std::initializer_list<std::string> options) : Server(std::vector<std::string>(options)) {}
    ~Server();  // stop_now() if it runs
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Opens the listener(s) and starts serving. Throws Error (a port in use: system).
    // After a stop, starts again (on the same configured port; with --port 0, a new one).
    void start();
    bool running() const noexcept;

    // The main listener's port and address ("127.0.0.1:41234") while running, else 0 / "".
    std::uint16_t port() const noexcept;
    std::string address() const;
    // The admin listener's address with --admin, else "".
    std::string admin_address() const;

    Counters counters() const;

    // Graceful: stop accepting, let connections finish (idle keep-alive ones close), wait
    // at most `timeout` (then close the rest, counted timed out). With --drain-delay and
    // --admin, /ready says 503 for that long first. Returns true when nothing was cut off.
    bool stop(std::chrono::milliseconds timeout = std::chrono::seconds(10));
    // At once: every connection closes now.
    void stop_now();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// okserve's version string, as `okserve --version` prints it.
const char* version() noexcept;

}  // namespace okserve
