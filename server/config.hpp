// okserve configuration: the command line and OKSERVE_* environment, parsed and checked.
// Knows nothing of sockets or threads; bad input throws UsageError (exit code 2).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "server/http/response.hpp"
#include "server/work.hpp"

namespace okserve {

// --mode thread: at most this many connection threads unless --workers says otherwise.
inline constexpr std::size_t thread_mode_default_workers = 512;

enum class Overflow : std::uint8_t { block, reject };

// How connections are scheduled onto threads (--mode). docs/tour.md follows a request
// through each one.
enum class Mode : std::uint8_t { thread, queue, pool, reactor, uring };
const char* to_string(Mode m) noexcept;

// LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES as the binary found them (systemd socket
// activation, sd_listen_fds(3)): checked against the process and its descriptors when the
// listeners open (instance.cpp), since a PID that is not ours is a start-up failure.
struct SocketActivation {
    bool given = false;
    long pid = 0;
    int count = 0;                   // descriptors 3 .. 3 + count - 1
    std::vector<std::string> names;  // empty, or one per descriptor
};

struct Config {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;
    // Where the main listener comes from (docs/platforms.md): okserve opens host:port (the
    // default), or a Unix socket (--unix), or serves one it is given (--fd, systemd).
    std::string unix_path;      // --unix PATH
    unsigned unix_mode = 0660;  // --unix-mode: permissions of the socket file
    int listen_fd = -1;         // --fd N
    SocketActivation activation;
    // The descriptor --fd or LISTEN_FDS names was not open when the command line was read
    // (the binary looks before it opens anything: a signalfd could take the number later).
    bool given_fd_closed = false;
    Mode mode = Mode::pool;
    std::size_t workers = 0;      // 0: one per CPU
    std::size_t min_workers = 0;  // 0: fixed size (= workers)
    std::size_t queue = 64;       // the pool holds workers + queue jobs
    Overflow overflow = Overflow::block;
    bool batch_dispatcher = true;  // the dispatcher runs under SCHED_BATCH (see dispatcher.cpp)
    bool reuse_port = true;        // reactor: a SO_REUSEPORT listener per loop (else one shared)
    bool defer_accept = true;      // TCP_DEFER_ACCEPT on the listeners
    int backlog = 4096;
    std::size_t max_connections = 0;  // 0: derived from RLIMIT_NOFILE
    std::uint64_t max_requests = 0;   // per connection; 0: unlimited
    bool close = false;               // one answer per connection
    std::size_t max_head = 8192;
    std::uint64_t max_body = UINT64_MAX;  // request body bytes; over it: 413
    http::ResponseSpec response;
    std::chrono::milliseconds header_timeout{10'000};
    std::chrono::milliseconds body_timeout{10'000};
    std::chrono::milliseconds keepalive_timeout{60'000};
    std::chrono::milliseconds write_timeout{10'000};
    std::chrono::milliseconds linger_timeout{2'000};
    std::chrono::milliseconds drain_timeout{10'000};
    std::chrono::milliseconds drain_delay{0};  // SIGTERM: keep serving this long, /ready says 503

    // The admin listener (--admin ADDR:PORT): metrics, stats, events, probes, the live page.
    bool admin = false;
    std::string admin_host = "127.0.0.1";
    std::uint16_t admin_port = 9090;
    std::chrono::milliseconds admin_interval{1'000};

    WorkSpec work;                   // --work: simulated cost of each request
    double rate_limit = 0;           // requests/second over the server; 0: unlimited
    std::uint64_t rate_burst = 0;    // 0: a tenth of a second's worth (at least 1)
    std::string access_log;          // empty: none

    // --instance-header: every answer names the instance that sent it (behind a balancer).
    bool instance_header = false;
    std::string instance_name;  // --instance-name; empty: "<host name>:<port>"
};

// The field --instance-header adds.
inline constexpr const char* instance_header_name = "Okserve-Instance";

// The probe subcommand: `okserve probe [URL] [--timeout T]`.
struct ProbeOptions {
    std::string url = "http://127.0.0.1:8080/";
    std::chrono::milliseconds timeout{2'000};
};

enum class Command : std::uint8_t { run, help, version, probe };

struct CommandLine {
    Command action = Command::run;
    Config config;
    ProbeOptions probe;
};

// "ADDR:PORT" ("127.0.0.1:9090", "[::1]:9090", "localhost:0"): throws UsageError naming flag.
void parse_host_port(const std::string& flag, const std::string& text, std::string& host, std::uint16_t& port);

// The flags a mode has no use for: given with that mode, they are refused (exit 2) rather
// than silently ignored. Empty when all is well, else the one-line message.
std::string check_mode_flags(Mode mode, const std::vector<std::string>& given);

// Reads OKSERVE_* variables (and PORT), then argv; flags win. Throws UsageError with a
// one-line message ("okserve: --port: 'x' is not a number") on any bad flag or value.
// With `socket_activation` (the binary), it also takes LISTEN_PID, LISTEN_FDS and
// LISTEN_FDNAMES and unsets them, so no child inherits them; the library passes false:
// the sockets a process was given are its own, not an embedded server's.
CommandLine parse_command_line(int argc, const char* const* argv, bool socket_activation = true);

// The three variables of systemd socket activation (null when unset) into `out`; throws
// UsageError when one is malformed or they disagree. Does not touch the environment.
void parse_socket_activation(const char* pid, const char* fds, const char* names, SocketActivation& out);

std::string help_text();
inline constexpr const char* version_text = "okserve 0.1.0";

// "250ms", "2s", "1.5" (seconds), "1m": throws UsageError naming `flag` when malformed.
std::chrono::milliseconds parse_duration(const std::string& flag, const std::string& text);

}  // namespace okserve
